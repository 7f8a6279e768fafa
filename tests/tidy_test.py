#!/usr/bin/env python3
"""Tests of tidy.py's scanners (ctest: tidy_self_test): how functions are found, named and
counted, which comment words are repository paths, and what a header contract is. Each
case is small C++ text, so a change to a heuristic that miscounts fails here first."""
import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import tidy  # noqa: E402


def functions(text):
    code, _ = tidy.lex(text)
    return [(name, length) for name, _, length in tidy.functions(code)]


class FunctionScan(unittest.TestCase):
    def test_a_body_counts_from_its_open_to_its_close_brace(self):
        self.assertEqual(functions("int f(int x) {\n  return x;\n}\n"), [("f", 3)])

    def test_methods_in_classes_and_namespaces_are_qualified_as_written(self):
        text = ("namespace a {\nclass C {\n public:\n  int g() const { return 1; }\n};\n"
                "Task<int> C::h(std::string s) noexcept {\n  co_return 2;\n}\n}\n")
        self.assertEqual(functions(text), [("g", 1), ("C::h", 3)])

    def test_braces_of_lambdas_and_blocks_belong_to_their_function(self):
        text = "void f() {\n  auto l = [] {\n    if (x) {\n    }\n  };\n}\nvoid g() {}\n"
        self.assertEqual(functions(text), [("f", 6), ("g", 1)])

    def test_a_constructor_with_brace_initialisers_is_one_function(self):
        text = "C::C(int n) : a_(n), b_{n, 2}, c_{} {\n  go();\n}\n"
        self.assertEqual(functions(text), [("C::C", 3)])

    def test_braces_in_comments_strings_and_characters_are_not_code(self):
        text = ('void f() {\n  // }\n  puts("}");\n  char c = \'}\';\n  int n = 100\'000;\n'
                '  auto r = R"(})";\n}\n#define M { \\\n }\nint g() { return 0; }\n')
        self.assertEqual(functions(text), [("f", 7), ("g", 1)])

    def test_initialisers_enums_and_declarations_are_not_functions(self):
        text = ("enum class E : int { kA, kB };\nint table[] = {1, 2};\nFoo foo = Foo(1, {2});\n"
                "struct S { int x{0}; void run(); };\n")
        self.assertEqual(functions(text), [])

    def test_extern_c_blocks_are_scopes_and_extern_c_functions_are_functions(self):
        text = ('extern "C" {\nint a() {\n  return 1;\n}\n}\n'
                'extern "C" int b(int x) {\n  if (x) {\n  }\n  return 0;\n}\n')
        self.assertEqual(functions(text), [("a", 3), ("b", 5)])

    def test_a_parenthesised_name_is_the_name(self):
        self.assertEqual(functions("ibv_mr*(ibv_reg_mr)(ibv_pd* pd) {\n}\n"), [("ibv_reg_mr", 2)])

    def test_tests_are_named_suite_dot_name(self):
        text = "TEST(Suite, Name) {\n}\nMICA_CO_TEST(Co, Body) {\n  co_return;\n}\n"
        self.assertEqual(functions(text), [("Suite.Name", 2), ("Co.Body", 3)])

    def test_template_arguments_with_parentheses_do_not_name_the_function(self):
        text = ("template <class O, Task<int> (O::*H)(int)>\n"
                "Task<int> typed(void* o, int x) {\n  co_return 1;\n}\n")
        self.assertEqual(functions(text), [("typed", 3)])


class Paths(unittest.TestCase):
    def test_existing_paths_and_brace_forms_pass(self):
        self.assertEqual(tidy.missing_paths("see async/sim/world.{h,cc} and docs/async.md."), [])

    def test_a_missing_path_is_reported_once_per_expansion(self):
        self.assertEqual(tidy.missing_paths("async/sim/wor.{h,cc}"),
                         ["async/sim/wor.h", "async/sim/wor.cc"])

    def test_patterns_and_bare_folders_are_not_checked(self):
        self.assertEqual(tidy.missing_paths("tests/<module>/*.cc, kv/, meta/lmdb*, "
                                            "tests/net/fake_verbs.*, bench/results/SUITE.md"),
                         [])

    def test_strings_are_not_comments(self):
        _, comments = tidy.lex('auto p = "nowhere/x.h";  // but async/nothing.h is\n')
        self.assertEqual([tidy.missing_paths(c) for _, c in comments], [["async/nothing.h"]])


class Contract(unittest.TestCase):
    def check(self, text):
        problems = []
        tidy.check_contract("x.h", text.splitlines(), problems)
        return problems

    def test_three_lines_before_pragma_once_pass(self):
        self.assertEqual(self.check("// What.\n//\n// Who owns.\n// Which thread.\n"
                                    "#pragma once\n"), [])

    def test_two_lines_fail(self):
        self.assertEqual(len(self.check("// What.\n// Who.\n#pragma once\n")), 1)


if __name__ == "__main__":
    unittest.main()
