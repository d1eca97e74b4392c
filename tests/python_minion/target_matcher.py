"""Target matching for the Python minion, written from the "Target grammar"
section of docs/PROTOCOL.md alone.

parse(target_type, expression) returns a matcher with .matches(minion_id,
grains) or raises TargetError; target_type is a muster.v1.TargetType value
(0 unspecified = glob, 1 glob, 2 list, 3 pcre, 4 grain, 5 compound).
Globs, ids and grains are compared as UTF-8 bytes, case-sensitively.

Regular expressions: the contract is RE2 syntax. Python's `re` is used here,
after rejecting what RE2 rejects but `re` accepts (backreferences,
lookaround, atomic groups, possessive quantifiers, conditionals, `\\Z`,
repeat counts above 1000). RE2-only syntax (`\\pL`, `[[:alpha:]]`, `\\C`,
`(?U)`, `\\Q...\\E`) is not translated: this minion rejects it.
"""

import re

GLOB, LIST, PCRE, GRAIN, COMPOUND = 1, 2, 3, 4, 5
WHITESPACE = b" \t\n\v\f\r"          # exactly the six ASCII whitespace bytes
MAX_EXPRESSION_BYTES = 65536
MAX_LIST_BYTES = 16 << 20
MAX_DEPTH = 64                        # nesting of '(' and 'not'


class TargetError(ValueError):
    pass


def _b(value):
    return value if isinstance(value, bytes) else value.encode("utf-8")


# --- glob -------------------------------------------------------------------

def _posix_bracket(p, i):
    return p[i:i + 1] == b"[" and p[i + 1:i + 2] in (b":", b".", b"=")


def compile_glob(pattern):
    """Returns a compiled bytes regex equivalent to the glob `pattern`."""
    p = _b(pattern)
    n = len(p)
    out = []
    i = 0
    while i < n:
        c = p[i:i + 1]
        if c == b"*":
            out.append(b".*")
            i += 1
        elif c == b"?":
            out.append(b".")
            i += 1
        elif c == b"[":
            start = i
            i += 1
            negate = False
            if i < n and p[i:i + 1] in (b"!", b"^"):
                negate = True
                i += 1
            members = set()
            closed = False
            first = True
            while i < n:
                lo = p[i]
                if lo == ord("]") and not first:
                    closed = True
                    i += 1
                    break
                first = False
                if _posix_bracket(p, i):
                    raise TargetError("POSIX bracket form at %d" % i)
                if lo == ord("\\"):
                    if i + 1 >= n:
                        break
                    i += 1
                    lo = p[i]
                i += 1
                if i + 1 < n and p[i] == ord("-") and p[i + 1] != ord("]"):
                    i += 1
                    if _posix_bracket(p, i):
                        raise TargetError("POSIX bracket form at %d" % i)
                    hi = p[i]
                    if hi == ord("\\"):
                        if i + 1 >= n:
                            break
                        i += 1
                        hi = p[i]
                    i += 1
                    if hi < lo:
                        raise TargetError("reversed range at %d" % i)
                    members.update(range(lo, hi + 1))
                else:
                    members.add(lo)
            if not closed:
                raise TargetError("unterminated character class at %d" % start)
            if negate:
                members = set(range(256)) - members
            if members:
                out.append(b"[" + b"".join(b"\\x%02x" % m for m in sorted(members)) + b"]")
            else:
                out.append(b"(?!)")
        else:
            if c == b"\\":
                if i + 1 >= n:
                    raise TargetError("trailing backslash at %d" % i)
                i += 1
                c = p[i:i + 1]
            out.append(re.escape(c))
            i += 1
    return re.compile(b"(?s)" + b"".join(out))


class _Glob:
    def __init__(self, pattern):
        self.re = compile_glob(pattern)

    def matches(self, minion_id, grains):
        return self.re.fullmatch(_b(minion_id)) is not None


# --- list -------------------------------------------------------------------

class _List:
    def __init__(self, text):
        ids = re.split(b"[," + re.escape(WHITESPACE) + b"]+", _b(text))
        self.ids = set(i for i in ids if i)
        if not self.ids:
            raise TargetError("no ids in list")

    def matches(self, minion_id, grains):
        return _b(minion_id) in self.ids


# --- pcre (RE2 syntax) ------------------------------------------------------

def _check_re2(pattern):
    """Raises TargetError for syntax Python's re accepts but RE2 rejects."""
    i = 0
    n = len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1:i + 2]
            if not in_class and nxt and nxt in "123456789gZ":
                raise TargetError("not RE2: \\%s" % nxt)
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            i += 1
            continue
        if c == "[":
            in_class = True
            i += 1
            if pattern[i:i + 1] == "^":
                i += 1
            if pattern[i:i + 1] == "]":
                i += 1
            continue
        if c == "(" and pattern[i + 1:i + 2] == "?":
            for bad in ("(?=", "(?!", "(?<=", "(?<!", "(?>", "(?(", "(?P="):
                if pattern.startswith(bad, i):
                    raise TargetError("not RE2: %s" % bad)
        if c in "*+?}" and pattern[i + 1:i + 2] == "+":
            raise TargetError("not RE2: possessive quantifier")
        if c == "{":
            m = re.match(r"\{(\d+)(,(\d*))?\}", pattern[i:])
            if m and (int(m.group(1)) > 1000 or (m.group(3) and int(m.group(3)) > 1000)):
                raise TargetError("repeat count above 1000")
        i += 1


class _Pcre:
    def __init__(self, pattern):
        if not pattern:
            raise TargetError("empty regular expression")
        _check_re2(pattern)
        try:
            self.re = re.compile(pattern, re.ASCII)
        except re.error as e:
            raise TargetError("invalid regular expression: %s" % e)

    def matches(self, minion_id, grains):
        if isinstance(minion_id, bytes):
            minion_id = minion_id.decode("utf-8", "surrogateescape")
        return self.re.fullmatch(minion_id) is not None


# --- grain ------------------------------------------------------------------

class _Grain:
    def __init__(self, text):
        t = _b(text)
        key = bytearray()
        i = 0
        while i < len(t) and t[i] != ord(":"):
            if t[i] == ord("\\") and i + 1 < len(t):
                i += 1
            key.append(t[i])
            i += 1
        if i == len(t):
            raise TargetError("expected 'key:glob', found no ':'")
        if not key:
            raise TargetError("empty grain key")
        if i + 1 == len(t):
            raise TargetError("empty glob after ':'")
        self.key = bytes(key)
        self.glob = compile_glob(t[i + 1:])

    def matches(self, minion_id, grains):
        for k, v in grains.items():
            if _b(k) == self.key:
                return self.glob.fullmatch(_b(v)) is not None
        return False


# --- compound ---------------------------------------------------------------

class _And:
    def __init__(self, children):
        self.children = children

    def matches(self, minion_id, grains):
        return all(c.matches(minion_id, grains) for c in self.children)


class _Or:
    def __init__(self, children):
        self.children = children

    def matches(self, minion_id, grains):
        return any(c.matches(minion_id, grains) for c in self.children)


class _Not:
    def __init__(self, child):
        self.child = child

    def matches(self, minion_id, grains):
        return not self.child.matches(minion_id, grains)


def _tokenize(text):
    """Yields (kind, bytes) with kind one of word, and, or, not, (, )."""
    tokens = []
    i = 0
    n = len(text)
    while True:
        while i < n and text[i] in WHITESPACE:
            i += 1
        if i == n:
            break
        c = text[i:i + 1]
        if c in (b"(", b")"):
            tokens.append((c.decode(), c))
            i += 1
            continue
        is_regex = text.startswith(b"E@", i)
        j = i
        depth = 0
        while j < n:
            c = text[j]
            if c in WHITESPACE:
                break
            if c == ord("\\"):
                j += 2
                continue
            if c == ord("("):
                if not is_regex:
                    break
                depth += 1
            elif c == ord(")"):
                if depth == 0:
                    break
                depth -= 1
            j += 1
        j = min(j, n)
        word = text[i:j]
        kind = word.decode("latin-1") if word in (b"and", b"or", b"not") else "word"
        tokens.append((kind, word))
        i = j
    tokens.append(("end", b""))
    return tokens


def _unescaped_at(word):
    i = 0
    while i < len(word):
        if word[i] == ord("\\"):
            i += 2
            continue
        if word[i] == ord("@"):
            return i
        i += 1
    return -1


def _atom(word):
    if len(word) >= 2 and word[1:2] == b"@" and word[:1] in (b"G", b"L", b"E"):
        body = word[2:]
        if not body:
            raise TargetError("empty %s target" % word.decode())
        if word[:1] == b"G":
            return _Grain(body)
        if word[:1] == b"L":
            if b"\\" in body:
                raise TargetError("'\\' in L@ list")
            return _List(body)
        return _Pcre(body.decode("utf-8"))
    if _unescaped_at(word) >= 0:
        raise TargetError("unknown prefix in %r" % word)
    return _Glob(word)


class _Parser:
    def __init__(self, text):
        self.tokens = _tokenize(text)
        self.next = 0

    def peek(self):
        return self.tokens[self.next][0]

    def take(self):
        self.next += 1
        return self.tokens[self.next - 1]

    def parse(self):
        node = self.chain("or", 0)
        if self.peek() != "end":
            raise TargetError("unexpected %r" % (self.tokens[self.next][1],))
        return node

    def chain(self, op, depth):
        children = []
        while True:
            children.append(self.chain("and", depth) if op == "or" else self.unary(depth))
            if self.peek() != op:
                break
            self.take()
        if len(children) == 1:
            return children[0]
        return _Or(children) if op == "or" else _And(children)

    def unary(self, depth):
        if self.peek() == "not":
            self.take()
            if depth + 1 > MAX_DEPTH:
                raise TargetError("nesting deeper than %d" % MAX_DEPTH)
            return _Not(self.unary(depth + 1))
        kind, word = self.take()
        if kind == "word":
            return _atom(word)
        if kind != "(":
            raise TargetError("expected a target, found %r" % (word,))
        if depth + 1 > MAX_DEPTH:
            raise TargetError("nesting deeper than %d" % MAX_DEPTH)
        inner = self.chain("or", depth + 1)
        if self.take()[0] != ")":
            raise TargetError("expected ')'")
        return inner


# --- entry point ------------------------------------------------------------

def parse(target_type, expression):
    raw = _b(expression)
    limit = MAX_LIST_BYTES if target_type == LIST else MAX_EXPRESSION_BYTES
    if len(raw) > limit:
        raise TargetError("expression longer than %d bytes" % limit)
    text = raw.strip(WHITESPACE)
    if not text:
        raise TargetError("empty target")
    if target_type in (0, GLOB):
        return _Glob(text)
    if target_type == LIST:
        return _List(text)
    if target_type == PCRE:
        return _Pcre(text.decode("utf-8"))
    if target_type == GRAIN:
        return _Grain(text)
    if target_type == COMPOUND:
        return _Parser(text).parse()
    raise TargetError("unknown target type %d" % target_type)


def matches(target, minion_id, grains):
    """True if the muster.v1.Target `target` is for this minion. A target
    that does not parse matches nobody (the job is dropped)."""
    try:
        return parse(target.type, target.expression).matches(minion_id, grains)
    except TargetError:
        return False
