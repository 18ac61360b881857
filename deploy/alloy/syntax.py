"""The Alloy configuration syntax, parsed the way Alloy's own parser reads it, for
deploy/alloy/check (no `alloy` binary can be installed here).

parse(text) -> [Attr | Block]; values are Python literals (str, int, float, bool, None,
list, dict), Ref (a reference such as loki.write.default.receiver) or Expr (an operator,
call or index: its value is known only to Alloy, its references are kept). Raises
AlloyError with the line on a syntax error: an unterminated string or comment, an unknown
escape, a missing value, two statements on one line, a block's '{' on the next line, a
list or object broken over lines without a trailing comma.
"""
import re


class AlloyError(Exception):
    def __init__(self, line, msg):
        super().__init__(f"line {line}: {msg}")
        self.line = line


# ---------------------------------------------------------------- tokens

PUNCT = ["||", "&&", "==", "!=", "<=", ">=", "{", "}", "[", "]", "(", ")", ",", ".", "=",
         "<", ">", "+", "-", "*", "/", "%", "^", "!"]
ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
           "\\": "\\", '"': '"'}


class Tok:
    def __init__(self, kind, value, line, nl_before):
        self.kind, self.value, self.line, self.nl_before = kind, value, line, nl_before

    def __repr__(self):
        return f"{self.kind}:{self.value!r}@{self.line}"


def tokenize(src):
    toks, i, line, nl = [], 0, 1, True
    n = len(src)
    while i < n:
        c = src[i]
        if c == "\n":
            line, nl, i = line + 1, True, i + 1
        elif c in " \t\r":
            i += 1
        elif src.startswith("//", i):
            while i < n and src[i] != "\n":
                i += 1
        elif src.startswith("/*", i):
            end = src.find("*/", i + 2)
            if end < 0:
                raise AlloyError(line, "unterminated /* comment")
            line += src.count("\n", i, end)
            nl = nl or "\n" in src[i:end]
            i = end + 2
        elif c == '"':
            start, i, out = line, i + 1, []
            while True:
                if i >= n or src[i] == "\n":
                    raise AlloyError(start, "unterminated string")
                ch = src[i]
                if ch == '"':
                    i += 1
                    break
                if ch == "\\":
                    e = src[i + 1] if i + 1 < n else ""
                    if e in ESCAPES:
                        out.append(ESCAPES[e]); i += 2
                    elif e in "xuU":
                        width = {"x": 2, "u": 4, "U": 8}[e]
                        digits = src[i + 2:i + 2 + width]
                        if not re.fullmatch(r"[0-9a-fA-F]{%d}" % width, digits):
                            raise AlloyError(line, f"bad \\{e} escape in string")
                        out.append(chr(int(digits, 16))); i += 2 + width
                    elif re.fullmatch(r"[0-7]{3}", src[i + 1:i + 4]):
                        out.append(chr(int(src[i + 1:i + 4], 8))); i += 4
                    else:
                        raise AlloyError(line, f"unknown escape \\{e} in string")
                else:
                    out.append(ch); i += 1
            toks.append(Tok("str", "".join(out), start, nl)); nl = False
        elif c == "`":
            end = src.find("`", i + 1)
            if end < 0:
                raise AlloyError(line, "unterminated raw string")
            toks.append(Tok("str", src[i + 1:end], line, nl)); nl = False
            line += src.count("\n", i, end)
            i = end + 1
        elif c.isdigit():
            m = re.compile(r"\d+(\.\d+)?([eE][+-]?\d+)?").match(src, i)
            text = m.group(0)
            toks.append(Tok("num", float(text) if m.group(1) or m.group(2) else int(text), line, nl))
            nl, i = False, m.end()
        elif c.isalpha() or c == "_":
            m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(src, i)
            toks.append(Tok("ident", m.group(0), line, nl)); nl, i = False, m.end()
        else:
            for p in PUNCT:
                if src.startswith(p, i):
                    toks.append(Tok("punct", p, line, nl)); nl, i = False, i + len(p)
                    break
            else:
                raise AlloyError(line, f"unexpected character {c!r}")
    toks.append(Tok("eof", None, line, True))
    return toks


# ---------------------------------------------------------------- parse tree

class Ref:
    """A reference such as discovery.docker.containers.targets."""
    def __init__(self, path, line):
        self.path, self.line = path, line


class Expr:
    """Anything computed (operators, calls, indexing): its type is known only to Alloy."""
    def __init__(self, refs, line):
        self.refs, self.line = refs, line


class Attr:
    def __init__(self, name, value, line):
        self.name, self.value, self.line = name, value, line


class Block:
    def __init__(self, name, label, body, line):
        self.name, self.label, self.body, self.line = name, label, body, line

    def attrs(self):
        return {s.name: s for s in self.body if isinstance(s, Attr)}

    def blocks(self, name=None):
        return [s for s in self.body if isinstance(s, Block) and (name is None or s.name == name)]


BINARY = [["||"], ["&&"], ["==", "!=", "<", "<=", ">", ">="], ["+", "-"], ["*", "/", "%"], ["^"]]


class Parser:
    def __init__(self, toks):
        self.toks, self.i = toks, 0

    def peek(self, k=0):
        return self.toks[self.i + k]

    def next(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def is_(self, value, k=0):
        t = self.peek(k)
        return t.kind == "punct" and t.value == value

    def expect(self, value):
        t = self.next()
        if t.kind != "punct" or t.value != value:
            raise AlloyError(t.line, f"expected {value!r}, found {t.value!r}")
        return t

    def body(self, closer):
        stmts = []
        while True:
            t = self.peek()
            if closer is None and t.kind == "eof":
                return stmts
            if closer is not None and self.is_("}"):
                return stmts
            if t.kind != "ident":
                raise AlloyError(t.line, f"expected an attribute or a block, found {t.value!r}")
            if stmts and not t.nl_before:
                raise AlloyError(t.line, "two statements on one line")
            stmts.append(self.statement())

    def statement(self):
        first = self.next()
        if self.is_("="):
            self.next()
            value = self.expr()
            end = self.peek()
            if not (end.nl_before or end.kind == "eof" or (end.kind == "punct" and end.value == "}")):
                raise AlloyError(end.line, f"unexpected {end.value!r} after the value of {first.value}")
            return Attr(first.value, value, first.line)
        name = [first.value]
        while self.is_("."):
            self.next()
            t = self.next()
            if t.kind != "ident":
                raise AlloyError(t.line, "expected a name after '.' in a block name")
            name.append(t.value)
        label = None
        if self.peek().kind == "str":
            label = self.next().value
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", label):
                raise AlloyError(first.line, f"block label {label!r} is not an identifier")
        brace = self.peek()
        if brace.nl_before:
            raise AlloyError(brace.line, "a block's '{' must be on the line of its name")
        self.expect("{")
        body = self.body("}")
        self.expect("}")
        return Block(".".join(name), label, body, first.line)

    def expr(self, level=0):
        if level == len(BINARY):
            return self.unary()
        left = self.expr(level + 1)
        while self.peek().kind == "punct" and self.peek().value in BINARY[level] and not self.peek().nl_before:
            op = self.next()
            right = self.expr(level + 1)
            left = Expr(refs_of(left) + refs_of(right), op.line)
        return left

    def unary(self):
        if self.is_("!") or self.is_("-"):
            op = self.next()
            operand = self.unary()
            if op.value == "-" and isinstance(operand, (int, float)) and not isinstance(operand, bool):
                return -operand
            return Expr(refs_of(operand), op.line)
        return self.postfix()

    def postfix(self):
        t = self.peek()
        value = self.primary()
        while True:
            if self.is_(".") and not self.peek().nl_before:
                self.next()
                name = self.next()
                if name.kind != "ident":
                    raise AlloyError(name.line, "expected a name after '.'")
                if isinstance(value, Ref):
                    value = Ref(value.path + [name.value], value.line)
                else:
                    value = Expr(refs_of(value), t.line)
            elif self.is_("[") and not self.peek().nl_before:
                self.next()
                index = self.expr()
                self.expect("]")
                value = Expr(refs_of(value) + refs_of(index), t.line)
            elif self.is_("(") and not self.peek().nl_before:
                self.next()
                args = self.items(")")
                # A call's callee (sys.env, string.format, ...) is a standard-library name.
                callee = [] if isinstance(value, Ref) else refs_of(value)
                value = Expr(callee + [r for a in args for r in refs_of(a)], t.line)
            else:
                return value

    def items(self, closer):
        out = []
        while True:
            if self.is_(closer):
                self.next()
                return out
            out.append(self.expr())
            if self.is_(","):
                self.next()
                continue
            end = self.peek()
            if end.kind == "punct" and end.value == closer:
                if end.nl_before:
                    raise AlloyError(end.line, f"missing ',' before the line break ending a {closer!r} list")
                self.next()
                return out
            raise AlloyError(end.line, f"expected ',' or {closer!r}, found {end.value!r}")

    def object(self):
        out = {}
        while True:
            if self.is_("}"):
                self.next()
                return out
            key = self.next()
            if key.kind not in ("ident", "str"):
                raise AlloyError(key.line, f"expected an object key, found {key.value!r}")
            self.expect("=")
            if key.value in out:
                raise AlloyError(key.line, f"object key {key.value!r} repeated")
            out[key.value] = self.expr()
            if self.is_(","):
                self.next()
                continue
            end = self.peek()
            if end.kind == "punct" and end.value == "}":
                if end.nl_before:
                    raise AlloyError(end.line, "missing ',' before the line break ending an object")
                self.next()
                return out
            raise AlloyError(end.line, f"expected ',' or '}}', found {end.value!r}")

    def primary(self):
        t = self.next()
        if t.kind in ("str", "num"):
            return t.value
        if t.kind == "ident":
            if t.value in ("true", "false"):
                return t.value == "true"
            if t.value == "null":
                return None
            return Ref([t.value], t.line)
        if t.kind == "punct" and t.value == "[":
            return self.items("]")
        if t.kind == "punct" and t.value == "{":
            return self.object()
        if t.kind == "punct" and t.value == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        raise AlloyError(t.line, f"expected a value, found {t.value!r}")


def refs_of(v):
    if isinstance(v, Ref):
        return [v]
    if isinstance(v, Expr):
        return list(v.refs)
    if isinstance(v, list):
        return [r for x in v for r in refs_of(x)]
    if isinstance(v, dict):
        return [r for x in v.values() for r in refs_of(x)]
    return []


def parse(src):
    return Parser(tokenize(src)).body(None)
