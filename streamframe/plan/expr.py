"""Column expressions: lazy pandas Series arithmetic, evaluated later on each batch.

`trades.qty * trades.price > 1000` builds a tree, not a value; each batch evaluates it with pandas'
vectorized operations. Any pandas Series method or accessor (`.round(2)`, `.isin([...])`, `.str.upper()`,
`.dt.hour`) works, because a call is recorded and replayed on the batch's Series.

    >>> import pandas as pd
    >>> e = (col("qty") * col("price")).round(1)
    >>> e
    (qty * price).round(1)
    >>> e.evaluate(pd.DataFrame({"qty": [2, 3], "price": [1.25, 2.0]})).tolist()
    [2.5, 6.0]
"""

from __future__ import annotations

import operator
from typing import Any

import pandas as pd

from streamframe.errors import MissingColumnError

_SYMBOLS = {
    operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/",
    operator.floordiv: "//", operator.mod: "%", operator.pow: "**",
    operator.gt: ">", operator.ge: ">=", operator.lt: "<", operator.le: "<=",
    operator.eq: "==", operator.ne: "!=", operator.and_: "&", operator.or_: "|", operator.xor: "^",
}


class Expr:
    """A lazy column expression; combine with operators, call any pandas Series method on it."""

    __hash__ = object.__hash__

    def evaluate(self, frame: pd.DataFrame) -> Any:
        raise NotImplementedError

    def columns(self) -> set[str]:
        """The column names this expression reads."""
        return set()

    # arithmetic and comparison build new expressions
    def _bin(self, op, other, reflected=False):
        other = other if isinstance(other, Expr) else Lit(other)
        return BinOp(op, other, self) if reflected else BinOp(op, self, other)

    def __add__(self, o): return self._bin(operator.add, o)
    def __radd__(self, o): return self._bin(operator.add, o, True)
    def __sub__(self, o): return self._bin(operator.sub, o)
    def __rsub__(self, o): return self._bin(operator.sub, o, True)
    def __mul__(self, o): return self._bin(operator.mul, o)
    def __rmul__(self, o): return self._bin(operator.mul, o, True)
    def __truediv__(self, o): return self._bin(operator.truediv, o)
    def __rtruediv__(self, o): return self._bin(operator.truediv, o, True)
    def __floordiv__(self, o): return self._bin(operator.floordiv, o)
    def __rfloordiv__(self, o): return self._bin(operator.floordiv, o, True)
    def __mod__(self, o): return self._bin(operator.mod, o)
    def __rmod__(self, o): return self._bin(operator.mod, o, True)
    def __pow__(self, o): return self._bin(operator.pow, o)
    def __rpow__(self, o): return self._bin(operator.pow, o, True)
    def __gt__(self, o): return self._bin(operator.gt, o)
    def __ge__(self, o): return self._bin(operator.ge, o)
    def __lt__(self, o): return self._bin(operator.lt, o)
    def __le__(self, o): return self._bin(operator.le, o)
    def __eq__(self, o): return self._bin(operator.eq, o)  # type: ignore[override]
    def __ne__(self, o): return self._bin(operator.ne, o)  # type: ignore[override]
    def __and__(self, o): return self._bin(operator.and_, o)
    def __rand__(self, o): return self._bin(operator.and_, o, True)
    def __or__(self, o): return self._bin(operator.or_, o)
    def __ror__(self, o): return self._bin(operator.or_, o, True)
    def __xor__(self, o): return self._bin(operator.xor, o)
    def __rxor__(self, o): return self._bin(operator.xor, o, True)
    def __invert__(self): return Unary(operator.invert, "~", self)
    def __neg__(self): return Unary(operator.neg, "-", self)
    def __abs__(self): return Unary(operator.abs, "abs", self)

    def __bool__(self):
        raise TypeError("a column expression has no truth value; combine conditions with &, | and ~ "
                        "(not and, or, not), and put each comparison in parentheses")

    def __iter__(self):
        raise TypeError("a column expression is lazy and cannot be iterated; run the frame to get values")

    def __getattr__(self, name: str) -> Attr:
        if name.startswith("_"):
            raise AttributeError(name)
        if not hasattr(pd.Series, name):
            raise AttributeError(f"pandas Series has no attribute {name!r}")
        return Attr(self, name)

    def __getitem__(self, item) -> Attr:
        return Call(Attr(self, "__getitem__"), (item,), {})


class Col(Expr):
    """A column of the batch, by name (metadata columns `_key`, `_timestamp`, ... included)."""

    def __init__(self, name: str):
        self.name = name

    def evaluate(self, frame):
        try:
            return frame[self.name]
        except KeyError:
            raise MissingColumnError(
                f"missing column {self.name!r} (the record has: {', '.join(map(str, frame.columns))})"
            ) from None

    def columns(self):
        return {self.name}

    def __repr__(self):
        return self.name if self.name.isidentifier() else f"`{self.name}`"


class Lit(Expr):
    def __init__(self, value):
        self.value = value

    def evaluate(self, frame):
        return self.value

    def __repr__(self):
        return repr(self.value)


class BinOp(Expr):
    def __init__(self, op, left: Expr, right: Expr):
        self.op, self.left, self.right = op, left, right

    def evaluate(self, frame):
        return self.op(self.left.evaluate(frame), self.right.evaluate(frame))

    def columns(self):
        return self.left.columns() | self.right.columns()

    def __repr__(self):
        return f"({self.left!r} {_SYMBOLS[self.op]} {self.right!r})"


class Unary(Expr):
    def __init__(self, op, symbol: str, operand: Expr):
        self.op, self.symbol, self.operand = op, symbol, operand

    def evaluate(self, frame):
        return self.op(self.operand.evaluate(frame))

    def columns(self):
        return self.operand.columns()

    def __repr__(self):
        return (f"{self.symbol}({self.operand!r})" if self.symbol == "abs"
                else f"{self.symbol}{self.operand!r}")


class Attr(Expr):
    """`expr.name`: a Series attribute, an accessor (`.str`, `.dt`), or a method waiting for its call."""

    def __init__(self, target: Expr, name: str, accessor: bool = False):
        self.target, self.name, self.accessor = target, name, accessor

    def evaluate(self, frame):
        return getattr(self.target.evaluate(frame), self.name)

    def columns(self):
        return self.target.columns()

    def __getattr__(self, name: str) -> Attr:
        if name.startswith("_"):
            raise AttributeError(name)
        if self.name in ("str", "dt", "cat", "list", "struct"):
            return Attr(self, name, accessor=True)
        return super().__getattr__(name)

    def __call__(self, *args, **kwargs) -> Call:
        return Call(self, args, kwargs)

    def __repr__(self):
        return f"{self.target!r}.{self.name}" if self.name != "__getitem__" else f"{self.target!r}"


class Call(Expr):
    def __init__(self, fn: Attr, args: tuple, kwargs: dict):
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def evaluate(self, frame):
        args = [a.evaluate(frame) if isinstance(a, Expr) else a for a in self.args]
        kwargs = {k: v.evaluate(frame) if isinstance(v, Expr) else v for k, v in self.kwargs.items()}
        return self.fn.evaluate(frame)(*args, **kwargs)

    def columns(self):
        cols = self.fn.columns()
        for a in (*self.args, *self.kwargs.values()):
            if isinstance(a, Expr):
                cols |= a.columns()
        return cols

    def __repr__(self):
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        if self.fn.name == "__getitem__":
            return f"{self.fn!r}[{', '.join(parts)}]"
        return f"{self.fn!r}({', '.join(parts)})"


def col(name: str) -> Col:
    """A column by name, for expressions written before a frame exists: `sf.col("qty") > 1`."""
    return Col(name)
