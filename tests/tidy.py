#!/usr/bin/env python3
"""Style checks that a compiler cannot make, run by ctest (label: tidy).

    tests/tidy.py [BUILD/compile_commands.json]

- lines of C++ and CMake at most 100 columns; no FIXME markers;
- calls that have one home stay there: io_uring_* in async/, ibv_* in net/rdma*, mdb_* in
  the LMDB wrapper (kv/lmdb*);
- every header opens with a contract: at least three non-empty // lines before
  #pragma once (what it is, who owns what, which thread, whether calls suspend);
- files at most 1,000 lines (over 600 is reported as a warning, not a failure);
- functions at most 70 lines. How a function is found and counted: comments, string and
  character literals and preprocessor lines are blanked first; a `{` met at namespace or
  class scope (outside parentheses) whose head -- the text since the previous `;`, `{` or
  `}` -- ends in `)` (optionally followed by const, noexcept, override, a trailing return
  type or a constructor's initialiser list) opens a function body; braces inside a body
  belong to it (lambdas and local classes count towards their function). Its length is the
  number of lines from the line of its `{` to the line of its matching `}`, both included.
  Its name is the identifier before its parameter list (`Class::method`); a macro test
  (TEST(Suite, Name), TEST_F, MICA_CO_TEST) is named Suite.Name;
- the exceptions to both limits are listed in tests/tidy_exceptions.txt with their current
  length, and may only shrink: an entry that has grown, has become shorter than recorded or
  is within the limit, or names a file or function that no longer exists, fails the check
  (lower or remove it);
- every .cc file under the modules is compiled: it appears in the compile database given
  as argument (ctest passes the build's compile_commands.json; without one, build/ is
  tried and the check is skipped with a warning when there is none). Files of optional
  parts (bench/ with MICA_BUILD_BENCH=OFF, the clang-only fuzzer) are checked only when the
  database compiles at least one file of that part;
- every repository path named in a comment (C++ comments, # comment lines of the CMake files
  and scripts) and in docs/*.md exists: a word that starts with a top-level folder, like
  async/sim/world.h or tests/net/fake_verbs.h; brace forms (async/sim/world.{h,cc}) are
  expanded; words with * or <...> or a part in capitals (bench/results/SUITE.md) are
  patterns and are not checked, nor is a bare folder (kv/); string literals are not
  comments and are ignored.
"""
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODULES = ["async", "net", "kv", "chunk", "craq", "meta", "client", "fuse", "apps", "tests",
           "bench"]
TOP_LEVEL = MODULES + ["docs", "scripts"]
LINE_MAX = 100
FILE_LINES_MAX = 1000
FILE_LINES_WARN = 600
FUNCTION_LINES_MAX = 70
EXCEPTIONS = ROOT / "tests" / "tidy_exceptions.txt"
CONTRACT_LINES_MIN = 3
HOMES = [
    (re.compile(r"\bio_uring_[a-z_]+\s*\("), ("async/", "bench/", "tests/")),
    (re.compile(r"\bibv_[a-z_]+\s*\("), ("net/rdma", "tests/")),
    (re.compile(r"\bmdb_[a-z_]+\s*\("), ("kv/lmdb", "tests/")),
]
# Optional parts of the build: (path prefix, why it may be absent from a compile database).
OPTIONAL_PARTS = [("bench/", "MICA_BUILD_BENCH=OFF"), ("tests/fuzz/", "clang only")]


def sources():
    for module in MODULES:
        folder = ROOT / module
        if folder.is_dir():
            yield from sorted(p for p in folder.rglob("*") if p.suffix in (".h", ".cc"))


# ---------------------------------------------------------------------------------------
# Lexing: split C++ text into code (comments, literals and preprocessor lines blanked, line
# breaks kept) and the comments with their line numbers.

def lex(text):
    code = []
    comments = []  # (line, text)
    i, n, line = 0, len(text), 1
    at_line_start = True

    def blank(s):
        return "".join(c if c == "\n" else " " for c in s)

    while i < n:
        c = text[i]
        if at_line_start and c == "#":
            j = i
            while True:  # a directive runs to an unescaped end of line
                k = text.find("\n", j)
                if k == -1:
                    k = n
                if k > 0 and text[k - 1] == "\\" and k < n:
                    j = k + 1
                    continue
                break
            directive = text[i:k]
            for offset, piece in enumerate(directive.split("\n")):
                if "//" in piece:
                    comments.append((line + offset, piece[piece.index("//") + 2:]))
            code.append(blank(directive))
            line += directive.count("\n")
            i = k
            continue
        if c == "\n":
            code.append(c)
            line += 1
            i += 1
            at_line_start = True
            continue
        if c in " \t":
            code.append(c)
            i += 1
            continue
        at_line_start = False
        if text.startswith("//", i):
            k = text.find("\n", i)
            k = n if k == -1 else k
            comments.append((line, text[i + 2:k]))
            code.append(blank(text[i:k]))
            i = k
            continue
        if text.startswith("/*", i):
            k = text.find("*/", i + 2)
            k = n if k == -1 else k + 2
            for offset, piece in enumerate(text[i + 2:k - 2].split("\n")):
                comments.append((line + offset, piece))
            code.append(blank(text[i:k]))
            line += text[i:k].count("\n")
            i = k
            continue
        raw = re.match(r'R"([^(\s]*)\(', text[i:i + 20])
        if raw and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = text.find(")" + raw.group(1) + '"', i)
            k = n if end == -1 else end + len(raw.group(1)) + 2
            code.append(blank(text[i:k]))
            line += text[i:k].count("\n")
            i = k
            continue
        if c == '"' or (c == "'" and not digit_separator(text, i)):
            k = i + 1
            while k < n and text[k] != c and text[k] != "\n":
                k += 2 if text[k] == "\\" else 1
            k = min(k + 1, n)
            code.append(c + blank(text[i + 1:k - 1]) + c)
            i = k
            continue
        code.append(c)
        i += 1
    return "".join(code), comments


def digit_separator(text, i):
    """A ' inside a number (100'000, 0xff'ff) is a digit separator, not a character."""
    j = i - 1
    while j >= 0 and (text[j].isalnum() or text[j] == "'"):
        j -= 1
    token = text[j + 1:i]
    return bool(token) and token[0].isdigit()


# ---------------------------------------------------------------------------------------
# Functions: a brace scan over the lexed code (see the docstring for the rules).

QUALIFIERS = re.compile(
    r"(\s*(const|volatile|noexcept(\s*\([^()]*\))?|override|final|mutable|&&|&|"
    r"->\s*[\w:<>,\s*&]+?)\s*)*$")
SCOPE_HEAD = re.compile(r"^((template\s*<.*>\s*)?(class|struct|union|enum|namespace)\b|"
                        r'extern\s*"[^"]*"\s*$)', re.S)
NAME_BEFORE_PAREN = re.compile(r"((?:[A-Za-z_~]\w*\s*::\s*)*(?:operator\s*(?:\(\)|[^\s(]+)|~?"
                               r"[A-Za-z_]\w*))\s*$")
SKIPPED_CALLS = {"decltype", "alignas", "requires", "__attribute__", "noexcept", "sizeof"}
TEST_MACROS = {"TEST", "TEST_F", "TEST_P", "MICA_CO_TEST", "TYPED_TEST"}


def top_level_parens(head):
    """(start, end) of every parenthesised group at depth 0 of head."""
    groups, depth, start = [], 0, 0
    for i, c in enumerate(head):
        if c == "(":
            if depth == 0:
                start = i
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                groups.append((start, i + 1))
    return groups


def strip_init_list(head):
    """head without a constructor's initialiser list (`) : a_(x), b_{y}`)."""
    groups = top_level_parens(head)
    for start, end in groups:
        rest = head[end:]
        m = re.match(r"\s*(noexcept\s*)?:(?!:)", rest)
        if m:
            return head[:end]
    return head


def clean_head(head):
    """head without access labels and attributes, which say nothing about its kind."""
    head = re.sub(r"\[\[.*?\]\]", "", head, flags=re.S)
    return re.sub(r"^\s*((public|private|protected)\s*:(?!:)\s*)+", "", head).strip()


def is_function_head(head):
    head = clean_head(head)
    full = head
    head = strip_init_list(head)
    if not head or SCOPE_HEAD.match(head):
        return False
    if head != full and not full.endswith((")", "}")):
        return False  # a member initialised with braces: `: buffer_{size}`
    if re.search(r"(^|[^=!<>])=\s*$", head) or head.endswith(("]", ",")):
        return False
    stripped = QUALIFIERS.sub("", head)
    stripped = re.sub(r"\brequires\b.*$", "", stripped).rstrip()
    return stripped.endswith(")")


def function_name(head):
    head = strip_init_list(clean_head(head))
    for start, end in top_level_parens(head):
        inner = head[start + 1:end - 1].strip()
        if re.fullmatch(r"[A-Za-z_]\w*", inner) and head[end:].lstrip().startswith("("):
            return inner  # a parenthesised name, as in `int (f)(int x)` (stops macros)
        m = NAME_BEFORE_PAREN.search(head[:start])
        if not m:
            continue  # a group in a template's arguments or a lambda's capture
        name = re.sub(r"\s+", "", m.group(1))
        if name.split("::")[-1] in SKIPPED_CALLS:
            continue
        if name in TEST_MACROS:
            args = [a.strip() for a in head[start + 1:end - 1].split(",")]
            return ".".join(args[:2])
        return name
    return "<lambda>" if "](" in head.replace(" ", "") else "<unknown>"


def functions(code):
    """Yields (name, first line, length in lines) of every function body in code."""
    stack = []  # kinds of the open braces: "scope" (namespace, class) or "other"
    head_start = 0
    paren = 0
    line = 1
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if c == "\n":
            line += 1
        elif c == "(":
            paren += 1
        elif c == ")":
            paren -= 1
        elif c == ";" and paren == 0:
            head_start = i + 1
        elif c == "}" and paren == 0:
            if stack:
                stack.pop()
            head_start = i + 1
        elif c == "{" and paren == 0:
            head = clean_head(code[head_start:i])
            if is_function_head(head):
                end, end_line = matching_brace(code, i, line)
                yield function_name(head), line, end_line - line + 1
                line = end_line
                i = end
                head_start = end + 1
            elif SCOPE_HEAD.match(head) and not re.match(r"(template.*)?enum\b", head, re.S):
                stack.append("scope")
                head_start = i + 1
            elif strip_init_list(head) != head:
                # A member initialised with braces (`: buffer_{size}`): part of the head.
                end, end_line = matching_brace(code, i, line)
                line = end_line
                i = end
            else:
                end, end_line = matching_brace(code, i, line)  # an initialiser, an enum
                line = end_line
                i = end
        i += 1


def matching_brace(code, i, line):
    depth = 0
    while i < len(code):
        c = code[i]
        if c == "\n":
            line += 1
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i, line
        i += 1
    return i, line


# ---------------------------------------------------------------------------------------
# Paths named in comments.

PATH_WORD = re.compile(r"(?<![\w./-])((?:%s)/[\w.{},/-]*[\w}])" % "|".join(TOP_LEVEL))


def expand_braces(word):
    m = re.search(r"\{([^{}]*)\}", word)
    if not m:
        return [word]
    out = []
    for choice in m.group(1).split(","):
        out += expand_braces(word[:m.start()] + choice + word[m.end():])
    return out


def missing_paths(text):
    """The repository paths named in text that do not exist."""
    missing = []
    for m in PATH_WORD.finditer(text):
        word = m.group(1).rstrip(".,")
        after = text[m.end():m.end() + 2]
        if after.startswith(("*", "<", ".*")) or "*" in word:
            continue
        if any(re.fullmatch(r"[A-Z][A-Z0-9_]+", part) for part in re.split(r"[/.]", word)):
            continue  # a placeholder: bench/results/SUITE.md
        for path in expand_braces(word):
            if not (ROOT / path).exists():
                missing.append(path)
    return missing


# ---------------------------------------------------------------------------------------

def load_exceptions(problems):
    """{key: recorded length} from tests/tidy_exceptions.txt (key: path or path:function)."""
    exceptions = {}
    if not EXCEPTIONS.exists():
        return exceptions
    for number, raw in enumerate(EXCEPTIONS.read_text().splitlines(), 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        if len(parts) != 2 or not parts[1].isdigit():
            problems.append(f"tests/tidy_exceptions.txt:{number}: want 'path[:function] lines'")
            continue
        exceptions[parts[0]] = int(parts[1])
    return exceptions


def check_length(key, length, limit, exceptions, seen, problems, where):
    if length <= limit:
        return
    seen[key] = max(seen.get(key, 0), length)
    recorded = exceptions.get(key)
    if recorded is None:
        problems.append(f"{where}: {key} is {length} lines (limit {limit}); split it")
    elif length > recorded:
        problems.append(f"{where}: {key} grew to {length} lines ({recorded} allowed)")


def compiled_files(database_arg, problems, warnings):
    """The set of repository-relative files the compile database builds, or None."""
    database = pathlib.Path(database_arg) if database_arg else ROOT / "build" / \
        "compile_commands.json"
    if not database.exists():
        if database_arg:
            problems.append(f"{database}: no compile database")
        else:
            warnings.append("no compile database given (or in build/): .cc files not checked")
        return None
    files = set()
    for entry in json.loads(database.read_text()):
        path = pathlib.Path(entry["directory"]) / entry["file"]
        try:
            files.add(path.resolve().relative_to(ROOT).as_posix())
        except ValueError:
            pass
    if not files:
        problems.append(f"{database}: compiles no file of this tree")
    return files


def check_compiled(rel, compiled, problems):
    for prefix, why in OPTIONAL_PARTS:
        if rel.startswith(prefix) and not any(f.startswith(prefix) for f in compiled):
            return  # that part is switched off in this build
    if rel not in compiled:
        problems.append(f"{rel}: not compiled (missing from compile_commands.json; a new file "
                        f"appears there once the build has re-run cmake)")


def check_source(path, rel, exceptions, seen, problems, warnings):
    text = path.read_text()
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if len(line) > LINE_MAX:
            problems.append(f"{rel}:{number}: line longer than {LINE_MAX} columns")
        if "FIXME" in line:
            problems.append(f"{rel}:{number}: FIXME marker")
    code, comments = lex(text)
    for number, line in enumerate(code.splitlines(), 1):
        for pattern, homes in HOMES:
            if pattern.search(line) and not rel.startswith(homes):
                problems.append(f"{rel}:{number}: '{pattern.pattern}' outside {homes}")
    if len(lines) > FILE_LINES_WARN:
        warnings.append(f"{rel}: {len(lines)} lines (most files stay under {FILE_LINES_WARN})")
    check_length(rel, len(lines), FILE_LINES_MAX, exceptions, seen, problems, rel)
    for name, first, length in functions(code):
        check_length(f"{rel}:{name}", length, FUNCTION_LINES_MAX, exceptions, seen, problems,
                     f"{rel}:{first}")
    if path.suffix == ".h":
        check_contract(rel, lines, problems)
    for number, comment in comments:
        for missing in missing_paths(comment):
            problems.append(f"{rel}:{number}: the comment names {missing}, which does not exist")


def check_contract(rel, lines, problems):
    contract = 0
    for line in lines:
        if not line.startswith("//"):
            break
        if line[2:].strip():
            contract += 1
    if contract < CONTRACT_LINES_MIN:
        problems.append(f"{rel}:1: the header's contract (the // lines before #pragma once) "
                        f"has {contract} line(s), fewer than {CONTRACT_LINES_MIN}")
    elif not any(line.strip() == "#pragma once" for line in lines):
        problems.append(f"{rel}: no #pragma once after the contract")


def check_hash_comments(problems):
    """Paths named in the # comments of the CMake files and scripts."""
    files = [p for p in ROOT.rglob("CMakeLists.txt")
             if not any(part.startswith("build") for part in p.relative_to(ROOT).parts)]
    files += sorted((ROOT / "scripts").glob("*.sh")) + sorted((ROOT / "bench").glob("*.sh"))
    for path in sorted(files):
        rel = path.relative_to(ROOT).as_posix()
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("#"):
                for missing in missing_paths(line):
                    problems.append(f"{rel}:{number}: the comment names {missing}, "
                                    f"which does not exist")


def check_docs(problems):
    for doc in sorted((ROOT / "docs").glob("*.md")):
        rel = doc.relative_to(ROOT).as_posix()
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            for missing in missing_paths(line):
                problems.append(f"{rel}:{number}: names {missing}, which does not exist")


def main(argv):
    problems, warnings = [], []
    exceptions = load_exceptions(problems)
    seen = {}
    compiled = compiled_files(argv[1] if len(argv) > 1 else None, problems, warnings)
    for path in sources():
        rel = path.relative_to(ROOT).as_posix()
        check_source(path, rel, exceptions, seen, problems, warnings)
        if path.suffix == ".cc" and compiled is not None:
            check_compiled(rel, compiled, problems)
    for cmake in ROOT.rglob("CMakeLists.txt"):
        if any(part.startswith("build") for part in cmake.relative_to(ROOT).parts):
            continue
        for number, line in enumerate(cmake.read_text().splitlines(), 1):
            if len(line) > LINE_MAX:
                problems.append(f"{cmake.relative_to(ROOT)}:{number}: line too long")
    check_hash_comments(problems)
    check_docs(problems)
    for key, recorded in sorted(exceptions.items()):
        if key not in seen:
            problems.append(f"tests/tidy_exceptions.txt: {key} is within its limit (or gone): "
                            f"remove the entry")
        elif seen[key] < recorded:
            problems.append(f"tests/tidy_exceptions.txt: {key} is {seen[key]} lines now: "
                            f"lower the entry from {recorded}")
    for w in warnings:
        print(f"warning: {w}")
    for p in problems:
        print(p)
    print(f"tidy: {len(problems)} problem(s), {len(warnings)} warning(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
