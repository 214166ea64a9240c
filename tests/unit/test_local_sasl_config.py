"""The files `streamframe local start --sasl` writes: a SCRAM listener with ACLs, secrets in 0600 files."""

from __future__ import annotations

import stat

from streamframe.local.config import admin_password, previous_port, write_server_properties


def test_sasl_mode_writes_a_scram_listener_with_acls_and_a_private_admin_config(tmp_path):
    props = write_server_properties(tmp_path, port=9092, controller_port=9093, sasl=True)
    text = props.read_text()
    assert "listeners=SASL_PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093" in text
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in text and "allow.everyone.if.no.acl.found=false" in text
    assert "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" in text
    password = admin_password(tmp_path)
    assert password == admin_password(tmp_path) and len(password) >= 20  # made once, then kept
    assert f'password="{password}"' in text  # the broker logs in to itself as the admin
    assert f'password="{password}"' in (tmp_path / "admin.properties").read_text()
    for path in (props, tmp_path / "admin.properties"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert previous_port(tmp_path) == 9092


def test_plaintext_mode_has_no_sasl_settings(tmp_path):
    text = write_server_properties(tmp_path, port=9092, controller_port=9093).read_text()
    assert "listeners=PLAINTEXT://127.0.0.1:9092" in text and "sasl" not in text and "authorizer" not in text
    assert previous_port(tmp_path) == 9092
