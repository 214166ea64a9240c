# Preload streamframe in every IPython kernel of a profile, instead of installing the dedicated kernel:
#     cp extension/ipython_kernel_config.py ~/.ipython/profile_default/ipython_kernel_config.py
# (or append these lines to the file there). `%load_ext streamframe` then happens at kernel start.
c = get_config()  # noqa: F821  (defined by IPython when it reads this file)
c.InteractiveShellApp.extensions.append("streamframe")
