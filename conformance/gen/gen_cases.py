#!/usr/bin/env python3
"""Writes conformance/cases/*.json from tables of documented semantics.

Python 3 stdlib only. Every expectation here is written from the
documentation (README, the evaluate package docs, ParseCondition's grammar
and semantics, DESIGN): each table row states an input and the answer the
spec gives. Buckets and rollout variants are computed with the independent
Python implementation in conformance/bucketing/bucketing.py, never by
running the Go engine.

    python3 conformance/gen/gen_cases.py     # rewrites conformance/cases/
"""

import datetime
import decimal
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "bucketing"))
import bucketing as bk  # noqa: E402

T0 = "2026-06-15T12:00:00Z"
SALT = "conformance-salt-1"


class N:
    """A JSON number written exactly as given ("1.0", "1e3", "-0")."""

    def __init__(self, text):
        self.text = text

    def dec(self):
        return decimal.Decimal(self.text)


_MARK = "\u0000num:"


def _prep(v):
    if isinstance(v, N):
        return _MARK + v.text
    if isinstance(v, dict):
        return {k: _prep(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_prep(x) for x in v]
    return v


def dumps(v):
    text = json.dumps(_prep(v), indent=1, ensure_ascii=False)
    return re.sub(r'"\\u0000num:([^"]*)"', r"\1", text)


def plain(v):
    """The value as the bucketing module reads it (Decimal for numbers)."""
    if isinstance(v, N):
        return v.dec()
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return decimal.Decimal(repr(v))
    return v


def at(base, seconds=0):
    t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%SZ") + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def expect(value, variant, reason, rule=None, segment=None, bucket=None, error=None, **extra):
    e = {"value": value, "variant": variant, "reason": reason, "ruleId": rule,
         "segment": segment, "bucket": bucket, "errorCode": error}
    e.update(extra)
    return e


def case(name, flag, context, exp, typ="bool", default=False, time=T0, **extra):
    c = {"name": name, "flag": flag, "context": context, "time": time,
         "type": typ, "default": default, "expect": exp}
    c.update(extra)
    return c


def boolflag(key, when=None, segment=None, **kw):
    """A boolean flag: one rule r1 serving true, default false."""
    rule = {"id": "r1", "variant": True}
    if when is not None:
        rule["when"] = when
    if segment is not None:
        rule["segment"] = segment
    f = {"key": key, "rules": [rule], "default": {"variant": False}}
    f.update(kw)
    return f


GROUPS = {}


def group(name, description, config, cases):
    GROUPS[name] = {"group": name, "description": description, "config": config, "cases": cases}


def bucket(salt, seed, idv):
    s = bk.canonical_id(plain(idv))
    return None if s is None else bk.bucket_of(salt, seed, s)


# ------------------------------------------------------------------ operators
# Each row: (condition, context, matches?). A match serves true with
# RULE_MATCH r1; no match falls through to the fixed default false (DEFAULT).

def op_group(name, description, rows, time_dependent=False, exact=()):
    flags, cases = [], []
    for i, (when, ctx, match) in enumerate(rows):
        key = "%s-%03d" % (name, i + 1)
        flags.append(boolflag(key, when=when))
        exp = (expect(True, "true", "RULE_MATCH", rule="r1") if match
               else expect(False, "false", "DEFAULT"))
        c = case(key, key, ctx, exp, description=when)
        if time_dependent:
            c["timeDependent"] = True
        if i + 1 in exact:
            c["exactNumbers"] = True
        cases.append(c)
    group(name, description, {"environment": "conformance", "salt": SALT, "flags": flags}, cases)


op_group("op-equality", "== and != on strings, numbers and bools; kinds never coerce; missing and null make every test false", [
    ("plan == 'pro'", {"plan": "pro"}, True),
    ('plan == "pro"', {"plan": "pro"}, True),
    ("plan == 'pro'", {"plan": "Pro"}, False),
    ("plan == 'pro'", {"plan": "pro "}, False),
    ("plan == ''", {"plan": ""}, True),
    ("plan == 'pro'", {}, False),
    ("plan == 'pro'", {"plan": None}, False),
    ("plan != 'pro'", {"plan": "free"}, True),
    ("plan != 'pro'", {"plan": "pro"}, False),
    ("plan != 'pro'", {}, False),
    ("plan != 'pro'", {"plan": None}, False),
    ("n == 1", {"n": N("1")}, True),
    ("n == 1", {"n": N("1.0")}, True),
    ("n == 1.0", {"n": N("1")}, True),
    ("n == 1", {"n": "1"}, False),
    ("n != 1", {"n": "1"}, True),
    ("n == '1'", {"n": N("1")}, False),
    ("n != '1'", {"n": N("1")}, True),
    ("n == 1e3", {"n": N("1000")}, True),
    ("n == 1000", {"n": N("1e3")}, True),
    ("n == 1E3", {"n": N("1000.0")}, True),
    ("n == 0", {"n": N("-0")}, True),
    ("n == -0", {"n": N("0")}, True),
    ("n == -1.5", {"n": N("-1.5")}, True),
    ("n == 0.1", {"n": N("0.1")}, True),
    ("n == 2.5", {"n": N("2.50")}, True),
    ("n == 1", {"n": True}, False),
    ("n != 1", {"n": True}, True),
    ("n == 1", {"n": N("1.5")}, False),
    ("n != 1", {"n": N("2")}, True),
    ("n == 9007199254740993", {"n": N("9007199254740993")}, True),
    ("n == 9007199254740992", {"n": N("9007199254740993")}, False),
    ("n != 9007199254740992", {"n": N("9007199254740993")}, True),
    ("beta == true", {"beta": True}, True),
    ("beta == false", {"beta": False}, True),
    ("beta == true", {"beta": False}, False),
    ("beta == true", {"beta": "true"}, False),
    ("beta != true", {"beta": "true"}, True),
    ("beta == 'true'", {"beta": True}, False),
    ("beta == 1", {"beta": True}, False),
    ("beta != false", {"beta": True}, True),
    ("beta == true", {}, False),
    ("beta != true", {}, False),
    ("tags == 'a'", {"tags": ["a"]}, False),
    ("tags != 'a'", {"tags": ["a"]}, True),
    ("acct == 'x'", {"acct": {"id": "x"}}, False),
    ("plan == 'café'", {"plan": "café"}, True),
    ("n == -7", {"n": N("-7")}, True),
    ("n == 123456789012", {"n": N("123456789012")}, True),
    ("n == 0.30000000000000004", {"n": N("0.30000000000000004")}, True),
], exact=(31, 32, 33))

op_group("op-bare-and-logic", "bare paths, true/false, and/or/not (also && || !), precedence, whitespace, quoting and escapes", [
    ("beta", {"beta": True}, True),
    ("beta", {"beta": False}, False),
    ("beta", {"beta": "true"}, False),
    ("beta", {"beta": N("1")}, False),
    ("beta", {}, False),
    ("beta", {"beta": None}, False),
    ("not beta", {"beta": False}, True),
    ("not beta", {"beta": True}, False),
    ("not beta", {}, True),
    ("!beta", {"beta": False}, True),
    ("true", {}, True),
    ("false", {}, False),
    ("true and false", {}, False),
    ("true or false", {}, True),
    ("not false", {}, True),
    ("a == 1 and b == 2", {"a": N("1"), "b": N("2")}, True),
    ("a == 1 and b == 2", {"a": N("1"), "b": N("3")}, False),
    ("a == 1 or b == 2", {"a": N("0"), "b": N("2")}, True),
    ("a == 1 or b == 2", {"a": N("0"), "b": N("0")}, False),
    ("a == 1 && b == 2", {"a": N("1"), "b": N("2")}, True),
    ("a == 1 || b == 2", {"a": N("9"), "b": N("2")}, True),
    ("!(a == 1)", {"a": N("2")}, True),
    ("not a == 1", {"a": N("2")}, True),
    ("not a == 1", {"a": N("1")}, False),
    ("not a == 1", {}, True),
    ("not (a != 1)", {}, True),
    ("a == 1 or b == 2 and c == 3", {"a": N("1"), "b": N("0"), "c": N("0")}, True),
    ("(a == 1 or b == 2) and c == 3", {"a": N("1"), "b": N("0"), "c": N("0")}, False),
    ("not a == 1 and b == 2", {"a": N("2"), "b": N("2")}, True),
    ("not (a == 1 and b == 2)", {"a": N("1"), "b": N("3")}, True),
    ("not not a == 1", {"a": N("1")}, True),
    ("((a == 1))", {"a": N("1")}, True),
    ("a == 1\nand\tb == 2", {"a": N("1"), "b": N("2")}, True),
    ("a==1 and b==2", {"a": N("1"), "b": N("2")}, True),
    ("s == 'it\\'s'", {"s": "it's"}, True),
    ("s == \"say \\\"hi\\\"\"", {"s": "say \"hi\""}, True),
    ("s == 'a\\nb'", {"s": "a\nb"}, True),
    ("s == 'a\\tb'", {"s": "a\tb"}, True),
    ("s == '\\u00e9'", {"s": "é"}, True),
    ("s == 'back\\\\slash'", {"s": "back\\slash"}, True),
    ("s == \"it's\"", {"s": "it's"}, True),
    ("plan == 'pro' and region == 'US'", {"plan": "pro", "region": "US"}, True),
    ("plan == 'pro' and region == 'US'", {"plan": "pro"}, False),
    ("plan == 'pro' or region == 'US'", {"region": "US"}, True),
])

op_group("op-ordering", "< <= > >= hold only between two numbers (numerically) or two strings (byte-wise); anything else is false", [
    ("n < 5", {"n": N("4")}, True),
    ("n < 5", {"n": N("5")}, False),
    ("n <= 5", {"n": N("5")}, True),
    ("n <= 5", {"n": N("5.0")}, True),
    ("n > 5", {"n": N("5.0001")}, True),
    ("n > 5", {"n": N("5")}, False),
    ("n >= 5", {"n": N("5.0")}, True),
    ("n >= 5", {"n": N("4.999")}, False),
    ("n < 5", {"n": "4"}, False),
    ("n < '5'", {"n": N("4")}, False),
    ("n > -1", {"n": N("-0.5")}, True),
    ("n < -1", {"n": N("-0.5")}, False),
    ("n < 1e2", {"n": N("99.9")}, True),
    ("n >= 0", {"n": N("-0")}, True),
    ("n <= -0", {"n": N("0")}, True),
    ("n < 5", {}, False),
    ("n >= 5", {"n": None}, False),
    ("n < 5", {"n": True}, False),
    ("n < 5", {"n": [N("1")]}, False),
    ("n > 9007199254740992", {"n": N("9007199254740993")}, True),
    ("n < 1.5", {"n": N("1")}, True),
    ("n > 0.1", {"n": N("0.2")}, True),
    ("s < 'b'", {"s": "a"}, True),
    ("s < 'B'", {"s": "a"}, False),
    ("s > 'Z'", {"s": "a"}, True),
    ("s < 'abc'", {"s": "ab"}, True),
    ("s > '9'", {"s": "10"}, False),
    ("s < '9'", {"s": "10"}, True),
    ("s >= 'm'", {"s": "m"}, True),
    ("s <= ''", {"s": ""}, True),
    ("s < 'é'", {"s": "z"}, True),
    ("s > 'a'", {"s": "a"}, False),
    ("s <= 'b'", {"s": "a"}, True),
    ("s < 'b'", {"s": N("1")}, False),
    ("s < 'b'", {}, False),
    ("not n < 5", {"n": "4"}, True),
    ("not (n < 5)", {}, True),
    ("n > 1 and n < 10", {"n": N("5")}, True),
    ("n > 1 and n < 10", {"n": N("10")}, False),
    ("n >= 1.5", {"n": N("1.50")}, True),
], exact=(20,))

op_group("op-in", "in and not in: equality with some element; numbers by value, no cross-kind coercion; long lists; missing is false for both", [
    ("plan in ['pro', 'team']", {"plan": "pro"}, True),
    ("plan in ['pro', 'team']", {"plan": "free"}, False),
    ("plan not in ['pro', 'team']", {"plan": "free"}, True),
    ("plan not in ['pro', 'team']", {"plan": "pro"}, False),
    ("plan in ['pro', 'team']", {}, False),
    ("plan not in ['pro', 'team']", {}, False),
    ("plan not in ['pro', 'team']", {"plan": None}, False),
    ("plan in ['pro', 'team']", {"plan": "PRO"}, False),
    ("n in [1, 2, 3]", {"n": N("2.0")}, True),
    ("n in [1, 2, 3]", {"n": N("2")}, True),
    ("n in [1, 2, 3]", {"n": "2"}, False),
    ("n not in [1, 2, 3]", {"n": "2"}, True),
    ("n in ['1', '2']", {"n": N("1")}, False),
    ("n in [1.5, 2.5]", {"n": N("1.5")}, True),
    ("n in [1e3]", {"n": N("1000")}, True),
    ("b in [true]", {"b": True}, True),
    ("b in [true]", {"b": "true"}, False),
    ("b not in [true]", {"b": False}, True),
    ("plan in []", {"plan": "x"}, False),
    ("plan not in []", {"plan": "x"}, True),
    ("x in ['a', 1, true]", {"x": N("1")}, True),
    ("x in ['a', 1, true]", {"x": True}, True),
    ("x in ['a', 1, true]", {"x": "a"}, True),
    ("x in ['a', 1, true]", {"x": "1"}, False),
    ("x in ['a', 1, true]", {"x": "true"}, False),
    ("plan in ['a', 'b',]", {"plan": "b"}, True),
    ("tags in ['a']", {"tags": ["a"]}, False),
    ("tags not in ['a']", {"tags": ["a"]}, True),
    ("n in [%s]" % ", ".join(str(i) for i in range(1, 21)), {"n": N("15")}, True),
    ("n in [%s]" % ", ".join(str(i) for i in range(1, 21)), {"n": N("15.0")}, True),
    ("n in [%s]" % ", ".join(str(i) for i in range(1, 21)), {"n": "15"}, False),
    ("n in [%s]" % ", ".join(str(i) for i in range(1, 21)), {"n": N("21")}, False),
    ("n not in [%s]" % ", ".join(str(i) for i in range(1, 21)), {"n": N("21")}, True),
    ("n not in [%s]" % ", ".join(str(i) for i in range(1, 21)), {}, False),
    ("s in [%s]" % ", ".join("'a%d'" % i for i in range(20)), {"s": "a7"}, True),
    ("s in [%s]" % ", ".join("'a%d'" % i for i in range(20)), {"s": "a70"}, False),
    ("s in [%s]" % ", ".join("'%d'" % i for i in range(20)), {"s": N("7")}, False),
    ("s not in [%s]" % ", ".join("'a%d'" % i for i in range(20)), {"s": "b"}, True),
    ("n in [-0]", {"n": N("0")}, True),
    ("n in [9007199254740992]", {"n": N("9007199254740993")}, False),
], exact=(40,))

op_group("op-contains", "contains: substring on strings, element membership (equality) on lists, false otherwise", [
    ("email contains '@acme'", {"email": "bob@acme.com"}, True),
    ("email contains '@acme'", {"email": "bob@ACME.com"}, False),
    ("email contains ''", {"email": "x"}, True),
    ("email contains 'bob@acme.com'", {"email": "bob@acme.com"}, True),
    ("email contains 'bob@acme.comx'", {"email": "bob@acme.com"}, False),
    ("tags contains 'beta'", {"tags": ["alpha", "beta"]}, True),
    ("tags contains 'beta'", {"tags": ["betas"]}, False),
    ("tags contains 'bet'", {"tags": ["beta"]}, False),
    ("tags contains 2", {"tags": [N("1"), N("2.0"), N("3")]}, True),
    ("tags contains 2", {"tags": ["2"]}, False),
    ("tags contains '2'", {"tags": [N("2")]}, False),
    ("tags contains true", {"tags": [True]}, True),
    ("tags contains true", {"tags": ["true"]}, False),
    ("tags contains 'b'", {"tags": "abc"}, True),
    ("tags contains 'a'", {"tags": []}, False),
    ("tags contains 'a'", {}, False),
    ("tags contains 'a'", {"tags": None}, False),
    ("tags contains 'a'", {"tags": {"a": N("1")}}, False),
    ("n contains 1", {"n": N("12")}, False),
    ("not (tags contains 'x')", {"tags": ["y"]}, True),
    ("not (tags contains 'x')", {}, True),
    ("tags contains 1.5", {"tags": [N("1.50")]}, True),
    ("account.tags contains 'vip'", {"account": {"tags": ["vip", "eu"]}}, True),
    ("tags contains 'é'", {"tags": "café"}, True),
])

op_group("op-strings", "startsWith and endsWith: string prefixes and suffixes, case-sensitive; non-strings are false", [
    ("email endsWith '@acme.com'", {"email": "a@acme.com"}, True),
    ("email endsWith '@acme.com'", {"email": "a@acme.com.evil"}, False),
    ("email endsWith '@acme.com'", {"email": "a@ACME.COM"}, False),
    ("email startsWith 'adm'", {"email": "admin"}, True),
    ("email startsWith 'adm'", {"email": "Admin"}, False),
    ("email startsWith 'admin'", {"email": "adm"}, False),
    ("s startsWith ''", {"s": "x"}, True),
    ("s endsWith ''", {"s": ""}, True),
    ("n startsWith '1'", {"n": N("12")}, False),
    ("n endsWith '2'", {"n": N("12")}, False),
    ("s startsWith 'a'", {}, False),
    ("s startsWith 'a'", {"s": None}, False),
    ("s startsWith 'a'", {"s": ["abc"]}, False),
    ("s endsWith 'é'", {"s": "café"}, True),
    ("s startsWith 'tr'", {"s": True}, False),
    ("not (s startsWith 'a')", {"s": "b"}, True),
    ("not (s endsWith 'a')", {}, True),
    ("s startsWith 'abc'", {"s": "abc"}, True),
])

op_group("op-matches", "matches: an RE2 search (unanchored) on strings; non-strings are false; backslashes are escaped in rule strings", [
    ("email matches '@acme\\\\.com$'", {"email": "x@acme.com"}, True),
    ("email matches '@acme\\\\.com$'", {"email": "x@acmeXcom"}, False),
    ("email matches '@acme\\\\.com$'", {"email": "x@acme.com.au"}, False),
    ("s matches 'b'", {"s": "abc"}, True),
    ("s matches '^b'", {"s": "abc"}, False),
    ("s matches '^\\\\d+$'", {"s": "12345"}, True),
    ("s matches '^\\\\d+$'", {"s": "12a45"}, False),
    ("n matches '^\\\\d+$'", {"n": N("123")}, False),
    ("s matches '(?i)^admin'", {"s": "ADMIN1"}, True),
    ("s matches '^admin'", {"s": "ADMIN1"}, False),
    ("s matches '^.$'", {"s": "é"}, True),
    ("s matches '^(a|b)$'", {"s": "b"}, True),
    ("s matches '^(a|b)$'", {"s": "ab"}, False),
    ("s matches 'x'", {}, False),
    ("s matches 'x'", {"s": None}, False),
    ("s matches 'x'", {"s": ["x"]}, False),
    ("not (s matches 'x')", {"s": "y"}, True),
    ("s matches ''", {"s": ""}, True),
    ("s matches '^[a-z]{3}-[0-9]{2}$'", {"s": "abc-12"}, True),
    ("s matches '^[a-z]{3}-[0-9]{2}$'", {"s": "abcd-12"}, False),
    ("s matches 'a.c'", {"s": "a\nc"}, False),
    ("s matches '\\\\.'", {"s": "a.b"}, True),
])

op_group("op-semver", "semver(): SemVer 2.0.0 precedence, pre-releases before their release, build metadata ignored, v prefix and short forms; invalid attributes are false", [
    ("semver(v) < '2.0.0'", {"v": "1.9.9"}, True),
    ("semver(v) < '2.0.0'", {"v": "2.0.0"}, False),
    ("semver(v) >= '2.0.0'", {"v": "2.0.0"}, True),
    ("semver(v) <= '2.0.0'", {"v": "2.0.0"}, True),
    ("semver(v) > '1.10.0'", {"v": "1.9.0"}, False),
    ("semver(v) > '1.10.0'", {"v": "1.11.0"}, True),
    ("semver(v) > '1.2.9'", {"v": "1.2.10"}, True),
    ("semver(v) < '2.0.0'", {"v": "2.0.0-rc.1"}, True),
    ("semver(v) == '2.0.0'", {"v": "2.0.0+build.5"}, True),
    ("semver(v) == '2.0.0+other'", {"v": "2.0.0+build.5"}, True),
    ("semver(v) < '1.0.0-alpha.1'", {"v": "1.0.0-alpha"}, True),
    ("semver(v) < '1.0.0-alpha.beta'", {"v": "1.0.0-alpha.1"}, True),
    ("semver(v) < '1.0.0-beta'", {"v": "1.0.0-alpha.beta"}, True),
    ("semver(v) < '1.0.0-beta.2'", {"v": "1.0.0-beta"}, True),
    ("semver(v) < '1.0.0-beta.11'", {"v": "1.0.0-beta.2"}, True),
    ("semver(v) < '1.0.0-rc.1'", {"v": "1.0.0-beta.11"}, True),
    ("semver(v) < '1.0.0'", {"v": "1.0.0-rc.1"}, True),
    ("semver(v) > '1.0.0-beta.11'", {"v": "1.0.0-beta.2"}, False),
    ("semver(v) < '1.0.0-alpha'", {"v": "1.0.0-1"}, True),
    ("semver(v) == '2.1.0'", {"v": "v2.1"}, True),
    ("semver(v) == 'v2'", {"v": "2.0.0"}, True),
    ("semver(v) == '2'", {"v": "v2.0"}, True),
    ("semver(v) > '2.0.0'", {"v": "2.0.1"}, True),
    ("semver(v) != '2.0.0'", {"v": "2.0.1"}, True),
    ("semver(v) != '2.0.0'", {"v": "2.0.0"}, False),
    ("semver(v) < '2.0.0'", {"v": "banana"}, False),
    ("semver(v) >= '2.0.0'", {"v": "banana"}, False),
    ("semver(v) != '2.0.0'", {"v": "banana"}, False),
    ("semver(v) < '2.0.0'", {}, False),
    ("semver(v) != '2.0.0'", {}, False),
    ("semver(v) < '2.0.0'", {"v": None}, False),
    ("semver(v) == '1.2.3'", {"v": "01.2.3"}, False),
    ("semver(v) < '2.0.0'", {"v": "1.2.3.4"}, False),
    ("semver(v) < '2.0.0'", {"v": ""}, False),
    ("semver(appVersion) < '2.0.0'", {"appVersion": "2.3.1"}, False),
    ("semver(appVersion) >= '2.3.0'", {"appVersion": "2.3.1"}, True),
    ("semver(v) == '1.0.0-rc.1'", {"v": "1.0.0-rc.1+b2"}, True),
    ("semver(v) < '10.0.0'", {"v": "9.99.99"}, True),
    ("not semver(v) < '2.0.0'", {"v": "banana"}, True),
    ("semver(account.app) >= '3.0.0'", {"account": {"app": "3.0.0"}}, True),
])

op_group("op-date", "date(): instants; 'YYYY-MM-DD' is midnight UTC; RFC 3339 offsets; Unix seconds; invalid values are false", [
    ("date(d) >= '2026-01-01'", {"d": "2026-01-01"}, True),
    ("date(d) >= '2026-01-01'", {"d": "2025-12-31"}, False),
    ("date(d) >= '2026-01-01'", {"d": "2025-12-31T23:59:59Z"}, False),
    ("date(d) >= '2026-01-01'", {"d": "2026-01-01T00:00:00Z"}, True),
    ("date(d) >= '2026-01-01'", {"d": "2026-01-01T00:30:00+01:00"}, False),
    ("date(d) >= '2026-01-01'", {"d": "2025-12-31T23:30:00-01:00"}, True),
    ("date(d) >= '2026-01-01'", {"d": N("1767225600")}, True),
    ("date(d) >= '2026-01-01'", {"d": N("1767225599")}, False),
    ("date(d) < '2026-01-01'", {"d": N("1767225599")}, True),
    ("date(d) >= '2026-01-01'", {"d": "not a date"}, False),
    ("date(d) < '2026-01-01'", {"d": "not a date"}, False),
    ("date(d) >= '2026-01-01'", {"d": "2026-13-01"}, False),
    ("date(d) >= '2026-01-01'", {}, False),
    ("date(d) < '2026-01-01'", {"d": None}, False),
    ("date(d) >= '2026-01-01'", {"d": True}, False),
    ("date(d) < '2026-01-01T12:00:00Z'", {"d": "2026-01-01"}, True),
    ("date(d) == '2026-01-01'", {"d": "2026-01-01T00:00:00Z"}, True),
    ("date(d) == '2026-01-01T01:00:00+01:00'", {"d": "2026-01-01"}, True),
    ("date(d) != '2026-01-01'", {"d": "2026-01-02"}, True),
    ("date(d) != '2026-01-01'", {"d": "2026-01-01T00:00:00+00:00"}, False),
    ("date(d) > '2026-01-01'", {"d": "2026-01-01T00:00:00.5Z"}, True),
    ("date(d) <= '2026-01-01'", {"d": "2026-01-01T00:00:00.5Z"}, False),
    ("date(signup.at) > '2025-06-01'", {"signup": {"at": "2025-07-01"}}, True),
    ("not date(d) < '2026-01-01'", {"d": "garbage"}, True),
    ("date(d) >= '2024-02-29'", {"d": "2024-02-29T00:00:00Z"}, True),
])

op_group("op-now", "now: the evaluation time (here 2026-06-15T12:00:00Z) against literals and date(); time-dependent", [
    ("now >= '2026-06-15'", {}, True),
    ("now < '2026-06-15'", {}, False),
    ("now >= '2026-06-15T12:00:00Z'", {}, True),
    ("now > '2026-06-15T12:00:00Z'", {}, False),
    ("now < '2026-06-15T12:00:01Z'", {}, True),
    ("now == '2026-06-15T12:00:00Z'", {}, True),
    ("now >= '2026-06-15T13:00:00+01:00'", {}, True),
    ("now < '2026-06-15T13:00:00+01:00'", {}, False),
    ("date(d) < now", {"d": "2026-06-15T11:59:59Z"}, True),
    ("date(d) >= now", {"d": "2026-06-15T11:59:59Z"}, False),
    ("date(d) >= now", {"d": "2026-06-15T12:00:00Z"}, True),
    ("now > date(d)", {"d": "2026-06-15T11:59:59Z"}, True),
    ("now <= date(d)", {"d": "2026-06-15T12:00:00Z"}, True),
    ("date(d) > now", {"d": N("1781524801")}, True),
    ("date(d) > now", {"d": N("1781524800")}, False),
    ("now < date(d)", {}, False),
    ("date(d) < now", {"d": "bad"}, False),
    ("now >= '2027-01-01'", {}, False),
], time_dependent=True)

op_group("op-has-paths", "has(), nested dotted paths, identifiers with - and _, paths through non-objects", [
    ("has(plan)", {"plan": "x"}, True),
    ("has(plan)", {"plan": ""}, True),
    ("has(plan)", {"plan": False}, True),
    ("has(plan)", {"plan": N("0")}, True),
    ("has(plan)", {"plan": None}, False),
    ("has(plan)", {}, False),
    ("has(tags)", {"tags": []}, True),
    ("has(a.b)", {"a": {"b": N("1")}}, True),
    ("has(a.b)", {"a": {}}, False),
    ("has(a.b)", {"a": "str"}, False),
    ("has(a.b)", {"a": {"b": None}}, False),
    ("not has(plan)", {}, True),
    ("not has(plan)", {"plan": "x"}, False),
    ("account.tier == 'gold'", {"account": {"tier": "gold"}}, True),
    ("account.tier == 'gold'", {"account": {"tier": "silver"}}, False),
    ("account.tier == 'gold'", {"account": "gold"}, False),
    ("account.tier != 'gold'", {"account": "gold"}, False),
    ("account.tier != 'gold'", {"account": {"tier": "silver"}}, True),
    ("a.b.c == 1", {"a": {"b": {"c": N("1")}}}, True),
    ("a.b.c == 1", {"a": {"b": {"c": "1"}}}, False),
    ("a.b.c != 1", {"a": {"b": None}}, False),
    ("a.b.c != 1", {"a": [N("1")]}, False),
    ("user-info.plan == 'x'", {"user-info": {"plan": "x"}}, True),
    ("_x == 1", {"_x": N("1")}, True),
    ("a_b-c == 'ok'", {"a_b-c": "ok"}, True),
    ("account.tier == 'gold'", {"account.tier": "gold"}, False),
    ("a.b", {"a": {"b": True}}, True),
    ("a.b", {"a": {"b": "yes"}}, False),
    ("account.plan in ['pro', 'team']", {"account": {"plan": "team"}}, True),
    ("x.y.z.w == 'deep'", {"x": {"y": {"z": {"w": "deep"}}}}, True),
    ("plan2 == 'pro'", {"plan": "pro"}, False),
    ("Plan == 'pro'", {"plan": "pro"}, False),
])

# ------------------------------------------------------------------ segments

seg_config = {
    "environment": "conformance", "salt": SALT,
    "segments": [
        {"key": "beta", "when": "country == 'DE'"},
        {"key": "vips", "included": ["u1", "u2", "42", "1000", "12.5", "true", "-1"]},
        {"key": "mixed", "when": "plan == 'pro'", "included": ["u9"], "excluded": ["u3"]},
        {"key": "by-acct", "by": "account.id", "included": ["acme"]},
        {"key": "nested", "when": "segment('beta') and plan == 'pro'"},
        {"key": "launch", "when": "now >= '2026-06-15T12:00:00Z'"},
        {"key": "launch-nested", "when": "segment('launch') and plan == 'pro'"},
        {"key": "empty"},
    ],
    "flags": [
        boolflag("seg-rule", segment="beta"),
        boolflag("seg-vips", segment="vips"),
        boolflag("seg-mixed", segment="mixed"),
        boolflag("seg-acct", segment="by-acct"),
        boolflag("seg-nested", segment="nested"),
        boolflag("seg-when", when="segment('vips')"),
        boolflag("seg-when-not", when="not segment('vips')"),
        boolflag("seg-both", segment="beta", when="plan == 'pro'"),
        boolflag("seg-time", segment="launch"),
        boolflag("seg-time-when", when="segment('launch')"),
        boolflag("seg-time-nested", when="segment('launch-nested')"),
        boolflag("seg-empty", segment="empty"),
        {"key": "seg-order", "type": "string",
         "variants": [{"name": "first"}, {"name": "second"}, {"name": "none"}],
         "rules": [{"id": "a", "segment": "beta", "variant": "first"},
                   {"id": "b", "segment": "vips", "variant": "second"}],
         "default": {"variant": "none"}},
    ],
}
SM = lambda seg, rule="r1": expect(True, "true", "SEGMENT_MATCH", rule=rule, segment=seg)
RM = expect(True, "true", "RULE_MATCH", rule="r1")
NO = expect(False, "false", "DEFAULT")
seg_cases = [
    case("rule-based-in", "seg-rule", {"country": "DE"}, SM("beta")),
    case("rule-based-out", "seg-rule", {"country": "FR"}, NO),
    case("rule-based-missing", "seg-rule", {}, NO),
    case("static-in", "seg-vips", {"userId": "u1"}, SM("vips")),
    case("static-out", "seg-vips", {"userId": "u7"}, NO),
    case("static-case-sensitive", "seg-vips", {"userId": "U1"}, NO),
    case("static-no-id", "seg-vips", {}, NO),
    case("static-empty-id", "seg-vips", {"userId": ""}, NO),
    case("static-number-id", "seg-vips", {"userId": N("42")}, SM("vips")),
    case("static-number-id-1.0-form", "seg-vips", {"userId": N("42.0")}, SM("vips")),
    case("static-number-id-exponent", "seg-vips", {"userId": N("1e3")}, SM("vips")),
    case("static-number-id-fraction", "seg-vips", {"userId": N("12.50")}, SM("vips")),
    case("static-number-id-negative", "seg-vips", {"userId": N("-1")}, SM("vips")),
    case("static-number-id-negative-1.0", "seg-vips", {"userId": N("-1.0")}, SM("vips")),
    case("static-number-id-not-listed", "seg-vips", {"userId": N("43")}, NO),
    case("static-string-of-number", "seg-vips", {"userId": "42"}, SM("vips")),
    case("static-string-not-canonical", "seg-vips", {"userId": "42.0"}, NO),
    case("static-bool-id", "seg-vips", {"userId": True}, SM("vips")),
    case("static-list-id-missing", "seg-vips", {"userId": ["u1"]}, NO),
    case("static-null-id", "seg-vips", {"userId": None}, NO),
    case("mixed-when", "seg-mixed", {"userId": "u5", "plan": "pro"}, SM("mixed")),
    case("mixed-included-overrides-when", "seg-mixed", {"userId": "u9", "plan": "free"}, SM("mixed")),
    case("mixed-excluded-overrides-when", "seg-mixed", {"userId": "u3", "plan": "pro"}, NO),
    case("mixed-neither", "seg-mixed", {"userId": "u5", "plan": "free"}, NO),
    case("mixed-no-id-when-decides", "seg-mixed", {"plan": "pro"}, SM("mixed")),
    case("by-nested-attribute-in", "seg-acct", {"userId": "x", "account": {"id": "acme"}}, SM("by-acct")),
    case("by-nested-attribute-userid-ignored", "seg-acct", {"userId": "acme"}, NO),
    case("nested-segment-in", "seg-nested", {"country": "DE", "plan": "pro"}, SM("nested")),
    case("nested-segment-out", "seg-nested", {"country": "DE", "plan": "free"}, NO),
    case("segment-fn-in-when-in", "seg-when", {"userId": "u2"}, RM),
    case("segment-fn-in-when-out", "seg-when", {"userId": "u8"}, NO),
    case("segment-fn-in-when-number-id", "seg-when", {"userId": N("1000.0")}, RM),
    case("not-segment-fn-out", "seg-when-not", {"userId": "u8"}, RM),
    case("not-segment-fn-in", "seg-when-not", {"userId": "u1"}, NO),
    case("segment-and-when-both", "seg-both", {"country": "DE", "plan": "pro"}, SM("beta")),
    case("segment-and-when-only-segment", "seg-both", {"country": "DE", "plan": "free"}, NO),
    case("segment-and-when-only-when", "seg-both", {"country": "FR", "plan": "pro"}, NO),
    case("empty-segment", "seg-empty", {"userId": "u1"}, NO),
    case("first-matching-segment-rule-wins", "seg-order", {"country": "DE", "userId": "u1"},
         expect("first", "first", "SEGMENT_MATCH", rule="a", segment="beta"), typ="string", default="dflt"),
    case("second-segment-rule", "seg-order", {"country": "FR", "userId": "u1"},
         expect("second", "second", "SEGMENT_MATCH", rule="b", segment="vips"), typ="string", default="dflt"),
    case("no-segment-rule", "seg-order", {"country": "FR", "userId": "u0"},
         expect("none", "none", "DEFAULT"), typ="string", default="dflt"),
    case("time-segment-at-start", "seg-time", {}, SM("launch"), timeDependent=True),
    case("time-segment-before", "seg-time", {}, NO, time=at(T0, -1), timeDependent=True),
    case("time-segment-after", "seg-time", {}, SM("launch"), time=at(T0, 86400), timeDependent=True),
    case("time-segment-in-when-at-start", "seg-time-when", {}, RM, timeDependent=True),
    case("time-segment-in-when-after", "seg-time-when", {}, RM, time=at(T0, 3600), timeDependent=True),
    case("time-segment-in-when-before", "seg-time-when", {}, NO, time=at(T0, -3600), timeDependent=True),
    case("time-segment-nested-in-when", "seg-time-nested", {"plan": "pro"}, RM, timeDependent=True),
    case("time-segment-nested-in-when-before", "seg-time-nested", {"plan": "pro"}, NO, time=at(T0, -1), timeDependent=True),
]
group("segments", "rule-based, static (string and numeric ids), mixed, by-attribute, nested and time-dependent segments; segment() in when", seg_config, seg_cases)

# ------------------------------------------------------------------ targets, off, static

tgt_config = {
    "environment": "conformance", "salt": SALT,
    "flags": [
        {"key": "tgt", "type": "string", "variants": [{"name": "A"}, {"name": "B"}, {"name": "C"}],
         "targets": [{"variant": "A", "values": ["u1", "42", "12.5", "true", "1000", "-3", "12345678901234567890"]},
                     {"variant": "B", "values": ["u2", "0"]}],
         "rules": [{"id": "r1", "when": "plan == 'pro'", "variant": "B"}],
         "default": {"variant": "C"}},
        {"key": "tgt-by", "type": "string", "variants": [{"name": "A"}, {"name": "B"}],
         "bucketing": {"by": "account.id"},
         "targets": [{"variant": "A", "values": ["acme", "7"]}],
         "default": {"variant": "B"}},
        {"key": "tgt-bool", "targets": [{"variant": True, "values": ["u1"]}, {"variant": "false", "values": ["u2"]}],
         "default": {"variant": True}},
        {"key": "tgt-off", "state": "off", "type": "string", "variants": [{"name": "A"}, {"name": "B"}],
         "offVariant": "B", "targets": [{"variant": "A", "values": ["u1"]}], "default": {"variant": "A"}},
    ],
}
T = lambda v: expect(v, v, "TARGET_MATCH")
tgt_cases = [
    case("string-id", "tgt", {"userId": "u1"}, T("A")),
    case("second-target", "tgt", {"userId": "u2"}, T("B")),
    case("target-beats-rule", "tgt", {"userId": "u1", "plan": "pro"}, T("A")),
    case("no-target-rule", "tgt", {"userId": "u5", "plan": "pro"}, expect("B", "B", "RULE_MATCH", rule="r1")),
    case("no-target-default", "tgt", {"userId": "u5"}, expect("C", "C", "DEFAULT")),
    case("case-sensitive", "tgt", {"userId": "U1"}, expect("C", "C", "DEFAULT")),
    case("missing-id", "tgt", {}, expect("C", "C", "DEFAULT")),
    case("empty-id", "tgt", {"userId": ""}, expect("C", "C", "DEFAULT")),
    case("number-id", "tgt", {"userId": N("42")}, T("A")),
    case("number-id-1.0-form", "tgt", {"userId": N("42.0")}, T("A")),
    case("number-id-exponent", "tgt", {"userId": N("1e3")}, T("A")),
    case("number-id-exponent-fraction", "tgt", {"userId": N("1.0e3")}, T("A")),
    case("number-id-fraction", "tgt", {"userId": N("12.5")}, T("A")),
    case("number-id-fraction-trailing-zero", "tgt", {"userId": N("12.50")}, T("A")),
    case("number-id-negative", "tgt", {"userId": N("-3")}, T("A")),
    case("number-id-negative-zero", "tgt", {"userId": N("-0")}, T("B")),
    case("number-id-zero-point-zero", "tgt", {"userId": N("0.0")}, T("B")),
    case("number-id-big-exact", "tgt", {"userId": N("12345678901234567890")}, T("A"), exactNumbers=True),
    case("string-of-number", "tgt", {"userId": "42"}, T("A")),
    case("string-not-canonical", "tgt", {"userId": "42.0"}, expect("C", "C", "DEFAULT")),
    case("bool-id", "tgt", {"userId": True}, T("A")),
    case("list-id-is-missing", "tgt", {"userId": ["u1"]}, expect("C", "C", "DEFAULT")),
    case("object-id-is-missing", "tgt", {"userId": {"id": "u1"}}, expect("C", "C", "DEFAULT")),
    case("by-attribute", "tgt-by", {"userId": "u1", "account": {"id": "acme"}}, T("A")),
    case("by-attribute-userid-ignored", "tgt-by", {"userId": "acme"}, expect("B", "B", "DEFAULT")),
    case("by-attribute-number", "tgt-by", {"account": {"id": N("7.0")}}, T("A")),
    case("bool-flag-target-true", "tgt-bool", {"userId": "u1"}, expect(True, "true", "TARGET_MATCH")),
    case("bool-flag-target-false", "tgt-bool", {"userId": "u2"}, expect(False, "false", "TARGET_MATCH")),
    case("bool-flag-not-targeted", "tgt-bool", {"userId": "u3"}, expect(True, "true", "DEFAULT")),
    case("off-beats-target", "tgt-off", {"userId": "u1"}, expect("B", "B", "OFF")),
]
for c in tgt_cases:
    if c["flag"] != "tgt-bool":
        c["type"], c["default"] = "string", "dflt"
group("targets", "individual targets by string and numeric ids (canonical number form), by a nested attribute, before rules", tgt_config, tgt_cases)

off_config = {
    "environment": "conformance", "salt": SALT,
    "flags": [
        {"key": "off-bool", "state": "off", "rules": [{"id": "r1", "when": "true", "variant": True}], "default": {"variant": True}},
        {"key": "off-bool-true", "state": "off", "offVariant": True, "default": {"variant": False}},
        {"key": "off-string-first", "state": "off", "type": "string",
         "variants": [{"name": "red"}, {"name": "blue"}], "default": {"variant": "blue"}},
        {"key": "off-string-named", "state": "off", "type": "string",
         "variants": [{"name": "red"}, {"name": "blue", "payload": {"hex": "#00f"}}], "offVariant": "blue",
         "default": {"variant": "red"}},
        {"key": "off-number", "state": "off", "type": "number",
         "variants": [{"name": "low", "value": 1}, {"name": "high", "value": 2.5}], "offVariant": "high"},
        {"key": "off-rollout", "state": "off", "default": {"rollout": [{"variant": True, "weight": 50}, {"variant": False, "weight": 50}]}},
        {"key": "on-explicit", "state": "on", "rules": [{"id": "r1", "when": "true", "variant": True}]},
        {"key": "static-bool", "default": {"variant": True}},
        {"key": "static-bool-no-default"},
        {"key": "static-string", "type": "string", "variants": [{"name": "x", "value": "ex"}, {"name": "y", "value": "why"}],
         "default": {"variant": "y"}},
        {"key": "static-string-no-default", "type": "string", "variants": [{"name": "x"}, {"name": "y"}]},
        {"key": "static-string-offvariant", "type": "string", "variants": [{"name": "x"}, {"name": "y"}], "offVariant": "y"},
        {"key": "static-number", "type": "number", "variants": [{"name": "n", "value": 7}], "default": {"variant": "n"}},
        {"key": "not-static-rule", "rules": [{"id": "r1", "when": "false", "variant": True}], "default": {"variant": True}},
        {"key": "not-static-target", "targets": [{"variant": False, "values": ["nobody"]}], "default": {"variant": True}},
        {"key": "not-static-prereq", "prerequisites": [{"flagKey": "static-bool", "variants": [True]}], "default": {"variant": True}},
        {"key": "not-static-percentage", "default": {"variant": True, "percentage": 100}},
    ],
}
off_cases = [
    case("off-serves-false", "off-bool", {"userId": "u1"}, expect(False, "false", "OFF"), default=True),
    case("off-with-offvariant-true", "off-bool-true", {}, expect(True, "true", "OFF")),
    case("off-string-first-variant", "off-string-first", {}, expect("red", "red", "OFF"), typ="string", default="d"),
    case("off-string-named", "off-string-named", {}, expect("blue", "blue", "OFF", payload={"hex": "#00f"}), typ="string", default="d"),
    case("off-number", "off-number", {}, expect(2.5, "high", "OFF"), typ="number", default=0),
    case("off-rollout-no-bucket", "off-rollout", {"userId": "u1"}, expect(False, "false", "OFF"), default=True),
    case("off-wrong-type", "off-bool", {}, expect("d", None, "ERROR", error="TYPE_MISMATCH"), typ="string", default="d"),
    case("on-explicit", "on-explicit", {}, expect(True, "true", "RULE_MATCH", rule="r1")),
    case("static-bool", "static-bool", {"userId": "u1"}, expect(True, "true", "STATIC")),
    case("static-bool-empty-context", "static-bool", {}, expect(True, "true", "STATIC")),
    case("static-bool-no-default-serves-off", "static-bool-no-default", {}, expect(False, "false", "STATIC"), default=True),
    case("static-string", "static-string", {}, expect("why", "y", "STATIC"), typ="string", default="d"),
    case("static-string-no-default", "static-string-no-default", {}, expect("x", "x", "STATIC"), typ="string", default="d"),
    case("static-string-offvariant", "static-string-offvariant", {}, expect("y", "y", "STATIC"), typ="string", default="d"),
    case("static-number", "static-number", {}, expect(7, "n", "STATIC"), typ="number", default=0),
    case("static-wrong-type", "static-number", {}, expect(True, None, "ERROR", error="TYPE_MISMATCH"), typ="bool", default=True),
    case("rule-not-matching-is-default", "not-static-rule", {}, expect(True, "true", "DEFAULT")),
    case("target-not-matching-is-default", "not-static-target", {"userId": "u1"}, expect(True, "true", "DEFAULT")),
    case("target-matching", "not-static-target", {"userId": "nobody"}, expect(False, "false", "TARGET_MATCH"), default=True),
    case("prereq-holding-is-default", "not-static-prereq", {}, expect(True, "true", "DEFAULT")),
]
b100 = bucket(SALT, "not-static-percentage", "u1")
off_cases.append(case("percentage-default-is-rollout", "not-static-percentage", {"userId": "u1"},
                      expect(True, "true", "ROLLOUT", bucket=b100)))
group("off-static", "off flags serve their off variant (OFF); flags with no targeting and a fixed default are STATIC", off_config, off_cases)

# ------------------------------------------------------------------ rollouts

ro_flags = [
    {"key": "ro-2", "type": "string", "variants": [{"name": "A"}, {"name": "B"}],
     "default": {"rollout": [{"variant": "A", "weight": 25}, {"variant": "B", "weight": 75}]}},
    {"key": "ro-3", "type": "string", "variants": [{"name": "A"}, {"name": "B"}, {"name": "C"}],
     "default": {"rollout": [{"variant": "A", "weight": 33.333}, {"variant": "B", "weight": 33.333}, {"variant": "C", "weight": 33.334}]}},
    {"key": "ro-seeded", "type": "string", "variants": [{"name": "A"}, {"name": "B"}],
     "bucketing": {"seed": "shared-seed-2026"},
     "default": {"rollout": [{"variant": "A", "weight": 50}, {"variant": "B", "weight": 50}]}},
    {"key": "ro-by", "type": "string", "variants": [{"name": "A"}, {"name": "B"}],
     "bucketing": {"by": "account.id"},
     "default": {"rollout": [{"variant": "A", "weight": 50}, {"variant": "B", "weight": 50}]}},
    {"key": "ro-rule", "type": "string", "variants": [{"name": "ctl"}, {"name": "A"}, {"name": "B"}],
     "rules": [{"id": "pro-split", "when": "plan == 'pro'", "seed": "rule-seed",
                "rollout": [{"variant": "A", "weight": 50}, {"variant": "B", "weight": 50}]}],
     "default": {"variant": "ctl"}},
    {"key": "pct-rule", "rules": [{"id": "r1", "percentage": 30, "variant": True}], "default": {"variant": False}},
    {"key": "pct-rule-chain", "type": "string", "variants": [{"name": "none"}, {"name": "first"}, {"name": "second"}],
     "rules": [{"id": "first10", "percentage": 10, "variant": "first"},
               {"id": "second50", "percentage": 50, "variant": "second"}],
     "default": {"variant": "none"}},
    {"key": "pct-default", "default": {"variant": True, "percentage": 10}},
    {"key": "pct-default-string", "type": "string", "variants": [{"name": "off"}, {"name": "on"}],
     "offVariant": "off", "default": {"variant": "on", "percentage": 40}},
    {"key": "pct-0", "default": {"variant": True, "percentage": 0}},
    {"key": "pct-100", "default": {"variant": True, "percentage": 100}},
    {"key": "pct-tiny", "default": {"variant": True, "percentage": 0.001}},
    {"key": "seg-ro", "type": "string", "variants": [{"name": "ctl"}, {"name": "A"}, {"name": "B"}],
     "rules": [{"id": "beta-split", "segment": "beta", "rollout": [{"variant": "A", "weight": 10}, {"variant": "B", "weight": 90}]}],
     "default": {"variant": "ctl"}},
]
ro_config = {"environment": "conformance", "salt": SALT, "segments": [{"key": "beta", "when": "country == 'DE'"}], "flags": ro_flags}


def rollout_variant(flag, seed, idv, weights, names):
    b = bucket(SALT, seed, idv)
    return b, names[bk.slice_of(b, weights)]


ro_cases = []
users = ["u%d" % i for i in range(16)] + ["8a7f4c91", "acme-co-1337", "user-1", "éçà"]
for u in users:
    b, v = rollout_variant("ro-2", "ro-2", u, [25, 75], ["A", "B"])
    ro_cases.append(case("two-way-%s" % u, "ro-2", {"userId": u}, expect(v, v, "ROLLOUT", bucket=b), typ="string", default="d"))
for u in users[:12]:
    b, v = rollout_variant("ro-3", "ro-3", u, ["33.333", "33.333", "33.334"], ["A", "B", "C"])
    ro_cases.append(case("three-way-%s" % u, "ro-3", {"userId": u}, expect(v, v, "ROLLOUT", bucket=b), typ="string", default="d"))
for u in users[:6]:
    b, v = rollout_variant("ro-seeded", "shared-seed-2026", u, [50, 50], ["A", "B"])
    ro_cases.append(case("flag-seed-%s" % u, "ro-seeded", {"userId": u}, expect(v, v, "ROLLOUT", bucket=b), typ="string", default="d"))
for label, idv in [("string", "acct-1"), ("string2", "acct-2"), ("number", N("7")), ("number-1.0", N("7.0")),
                   ("number-exp", N("7e0")), ("fraction", N("0.1")), ("negative-fraction", N("-0.000001")),
                   ("big", N("1e21")), ("bool", True), ("bool-false", False)]:
    b, v = rollout_variant("ro-by", "ro-by", idv, [50, 50], ["A", "B"])
    ro_cases.append(case("by-account-%s" % label, "ro-by", {"userId": "ignored", "account": {"id": idv}},
                         expect(v, v, "ROLLOUT", bucket=b), typ="string", default="d"))
for label, idv in [("int", N("42")), ("int-1.0", N("42.0")), ("int-exp", N("4.2e1")), ("string", "42"),
                   ("zero", N("0")), ("neg-zero", N("-0")), ("fraction", N("12.5")), ("fraction-zeros", N("12.500")),
                   ("small", N("0.000001")), ("exp-small", N("1e-7")), ("round-trip", N("0.30000000000000004")),
                   ("big-exact", N("12345678901234567890"))]:
    b, v = rollout_variant("ro-2", "ro-2", idv, [25, 75], ["A", "B"])
    c = case("numeric-id-%s" % label, "ro-2", {"userId": idv}, expect(v, v, "ROLLOUT", bucket=b), typ="string", default="d")
    if label == "big-exact":
        c["exactNumbers"] = True
    ro_cases.append(c)
# Missing bucketing attribute in a default rollout: the off variant, DEFAULT, MISSING_BUCKETING_ATTRIBUTE.
for label, ctx in [("absent", {}), ("empty-string", {"userId": ""}), ("null", {"userId": None}),
                   ("list", {"userId": ["u1"]}), ("object", {"userId": {"id": "u1"}})]:
    ro_cases.append(case("missing-id-%s" % label, "ro-2", ctx,
                         expect("A", "A", "DEFAULT", error="MISSING_BUCKETING_ATTRIBUTE"), typ="string", default="d"))
ro_cases.append(case("missing-by-attribute", "ro-by", {"userId": "u1"},
                     expect("A", "A", "DEFAULT", error="MISSING_BUCKETING_ATTRIBUTE"), typ="string", default="d"))
ro_cases.append(case("missing-id-percentage-default", "pct-default", {},
                     expect(False, "false", "DEFAULT", error="MISSING_BUCKETING_ATTRIBUTE"), default=True))
for u in users[:8]:
    b, v = rollout_variant("ro-rule", "rule-seed", u, [50, 50], ["A", "B"])
    ro_cases.append(case("rule-rollout-%s" % u, "ro-rule", {"userId": u, "plan": "pro"},
                         expect(v, v, "RULE_MATCH", rule="pro-split", bucket=b), typ="string", default="d"))
ro_cases.append(case("rule-rollout-not-matching", "ro-rule", {"userId": "u1", "plan": "free"},
                     expect("ctl", "ctl", "DEFAULT"), typ="string", default="d"))
ro_cases.append(case("rule-rollout-missing-id-skips-rule", "ro-rule", {"plan": "pro"},
                     expect("ctl", "ctl", "DEFAULT"), typ="string", default="d"))
for u in users[:6]:
    b, v = rollout_variant("seg-ro", "seg-ro", u, [10, 90], ["A", "B"])
    ro_cases.append(case("segment-rollout-%s" % u, "seg-ro", {"userId": u, "country": "DE"},
                         expect(v, v, "SEGMENT_MATCH", rule="beta-split", segment="beta", bucket=b), typ="string", default="d"))
for u in users:
    b = bucket(SALT, "pct-rule", u)
    exp = expect(True, "true", "RULE_MATCH", rule="r1", bucket=b) if b < 30000 else expect(False, "false", "DEFAULT")
    ro_cases.append(case("percentage-rule-%s" % u, "pct-rule", {"userId": u}, exp))
ro_cases.append(case("percentage-rule-missing-id-falls-through", "pct-rule", {}, expect(False, "false", "DEFAULT")))
for u in users[:14]:
    b = bucket(SALT, "pct-rule-chain", u)
    if b < 10000:
        exp = expect("first", "first", "RULE_MATCH", rule="first10", bucket=b)
    elif b < 50000:
        exp = expect("second", "second", "RULE_MATCH", rule="second50", bucket=b)
    else:
        exp = expect("none", "none", "DEFAULT")
    ro_cases.append(case("percentage-chain-%s" % u, "pct-rule-chain", {"userId": u}, exp, typ="string", default="d"))
for u in users:
    b = bucket(SALT, "pct-default", u)
    exp = expect(True, "true", "ROLLOUT", bucket=b) if b < 10000 else expect(False, "false", "ROLLOUT", bucket=b)
    ro_cases.append(case("percentage-default-%s" % u, "pct-default", {"userId": u}, exp))
for u in users[:10]:
    b = bucket(SALT, "pct-default-string", u)
    v = "on" if b < 40000 else "off"
    ro_cases.append(case("percentage-default-string-%s" % u, "pct-default-string", {"userId": u},
                         expect(v, v, "ROLLOUT", bucket=b), typ="string", default="d"))
for u in users[:4]:
    ro_cases.append(case("percentage-0-%s" % u, "pct-0", {"userId": u},
                         expect(False, "false", "ROLLOUT", bucket=bucket(SALT, "pct-0", u)), default=True))
    ro_cases.append(case("percentage-100-%s" % u, "pct-100", {"userId": u},
                         expect(True, "true", "ROLLOUT", bucket=bucket(SALT, "pct-100", u))))
# 0.001 % covers bucket 0 only: find an id in bucket 0 and one in bucket 1.
zero = one = None
i = 0
while zero is None or one is None:
    b = bucket(SALT, "pct-tiny", "z%d" % i)
    if b == 0 and zero is None:
        zero = "z%d" % i
    if b == 1 and one is None:
        one = "z%d" % i
    i += 1
ro_cases.append(case("percentage-0.001-bucket-0", "pct-tiny", {"userId": zero}, expect(True, "true", "ROLLOUT", bucket=0)))
ro_cases.append(case("percentage-0.001-bucket-1", "pct-tiny", {"userId": one}, expect(False, "false", "ROLLOUT", bucket=1)))
group("rollouts", "weighted rollouts, percentages in rules and defaults, seeds, bucketing attributes, numeric ids, missing ids; buckets from the Python implementation", ro_config, ro_cases)

# ------------------------------------------------------------------ progressive ramps

S1, S2, S3 = "2026-06-10T00:00:00Z", "2026-06-12T00:00:00Z", "2026-06-14T00:00:00Z"
ramp_flags = [
    {"key": "ramp", "default": {"progressive": {"variant": True, "steps": [
        {"at": S1, "percentage": 10}, {"at": S2, "percentage": 50}, {"at": S3, "percentage": 100}]}}},
    {"key": "ramp-rule", "type": "string", "variants": [{"name": "old"}, {"name": "new"}],
     "rules": [{"id": "ramp-1", "when": "plan == 'pro'", "progressive": {"variant": "new", "steps": [
         {"at": S1, "percentage": 10}, {"at": S2, "percentage": 50}]}}],
     "default": {"variant": "old"}},
    {"key": "ramp-paused", "default": {"progressive": {"variant": True, "paused": True, "pausedAt": "2026-06-11T00:00:00Z",
                                                       "steps": [{"at": S1, "percentage": 10}, {"at": S2, "percentage": 50}]}}},
]
ramp_config = {"environment": "conformance", "salt": SALT, "flags": ramp_flags}
ramp_cases = []
# Pick ids by bucket so the step boundaries show: one < 10000, one in [10000, 50000), one >= 50000.
picks = {}
i = 0
while len(picks) < 3:
    u = "r%d" % i
    b = bucket(SALT, "ramp", u)
    k = 0 if b < 10000 else (1 if b < 50000 else 2)
    picks.setdefault(k, u)
    i += 1


def ramp_pct(t):
    pct = 0
    for at_, p in [(S1, 10), (S2, 50), (S3, 100)]:
        if t >= at_:
            pct = p
    return pct


times = [("before-first-step", at(S1, -1)), ("at-first-step", S1), ("just-before-second", at(S2, -1)),
         ("at-second-step", S2), ("at-last-step", S3), ("after-last-step", T0)]
for k, u in sorted(picks.items()):
    b = bucket(SALT, "ramp", u)
    for label, t in times:
        pct = ramp_pct(t)
        v = b < pct * 1000
        ramp_cases.append(case("default-%s-bucket%d-%s" % (label, b, u), "ramp", {"userId": u},
                               expect(v, "true" if v else "false", "ROLLOUT", bucket=b), time=t, timeDependent=True))
# A paused ramp is evaluated as of pausedAt (10 % then), whatever the time.
for u in sorted(picks.values()):
    b = bucket(SALT, "ramp-paused", u)
    v = b < 10000
    ramp_cases.append(case("paused-at-10pct-%s" % u, "ramp-paused", {"userId": u},
                           expect(v, "true" if v else "false", "ROLLOUT", bucket=b), time=T0))
rule_picks = {}
i = 0
while len(rule_picks) < 3:
    u = "q%d" % i
    b = bucket(SALT, "ramp-rule", u)
    k = 0 if b < 10000 else (1 if b < 50000 else 2)
    rule_picks.setdefault(k, u)
    i += 1
for k, u in sorted(rule_picks.items()):
    b = bucket(SALT, "ramp-rule", u)
    for label, t in times:
        pct = 0 if t < S1 else (10 if t < S2 else 50)
        if b < pct * 1000:
            exp = expect("new", "new", "RULE_MATCH", rule="ramp-1", bucket=b)
        else:
            exp = expect("old", "old", "DEFAULT")
        ramp_cases.append(case("rule-%s-bucket%d-%s" % (label, b, u), "ramp-rule", {"userId": u, "plan": "pro"}, exp,
                               typ="string", default="d", time=t, timeDependent=True))
ramp_cases.append(case("default-missing-id", "ramp", {}, expect(False, "false", "DEFAULT", error="MISSING_BUCKETING_ATTRIBUTE"),
                       default=True, time=T0, timeDependent=True))
group("progressive", "progressive ramps at and around step boundaries (steps apply from their instant), in rules and defaults, paused", ramp_config, ramp_cases)

# ------------------------------------------------------------------ prerequisites

pre_config = {
    "environment": "conformance", "salt": SALT,
    "flags": [
        {"key": "base", "rules": [{"id": "r1", "when": "plan == 'pro'", "variant": True}], "default": {"variant": False}},
        {"key": "child", "prerequisites": [{"flagKey": "base", "variants": [True]}], "default": {"variant": True}},
        {"key": "grandchild", "prerequisites": [{"flagKey": "child", "variants": [True]}],
         "rules": [{"id": "g1", "when": "region == 'US'", "variant": True}], "default": {"variant": False}},
        {"key": "offbase", "state": "off"},
        {"key": "child-of-off", "prerequisites": [{"flagKey": "offbase", "variants": [True]}], "default": {"variant": True}},
        {"key": "color", "type": "string", "variants": [{"name": "red"}, {"name": "blue"}, {"name": "green"}],
         "rules": [{"id": "c1", "when": "likes == 'blue'", "variant": "blue"}, {"id": "c2", "when": "likes == 'green'", "variant": "green"}],
         "default": {"variant": "red"}},
        {"key": "child-color", "type": "string", "variants": [{"name": "no"}, {"name": "yes"}], "offVariant": "no",
         "prerequisites": [{"flagKey": "color", "variants": ["blue", "green"]}], "default": {"variant": "yes"}},
        {"key": "child-multi", "prerequisites": [{"flagKey": "base", "variants": [True]}, {"flagKey": "color", "variants": ["blue"]}],
         "targets": [{"variant": True, "values": ["vip"]}], "default": {"variant": True}},
        {"key": "child-target", "prerequisites": [{"flagKey": "base", "variants": [True]}],
         "targets": [{"variant": False, "values": ["u1"]}], "default": {"variant": True}},
        {"key": "child-unknown-flag-eval", "prerequisites": [{"flagKey": "base", "variants": [False]}], "default": {"variant": True}},
        {"key": "pct-base", "default": {"variant": True, "percentage": 50}},
        {"key": "child-of-pct", "prerequisites": [{"flagKey": "pct-base", "variants": [True]}], "default": {"variant": True}},
    ],
}
PF = lambda pre, val=False, var="false": expect(val, var, "PREREQUISITE_FAILED", prerequisite=pre)
pre_cases = [
    case("holds", "child", {"plan": "pro"}, expect(True, "true", "DEFAULT")),
    case("fails", "child", {"plan": "free"}, PF("base")),
    case("fails-missing-attribute", "child", {}, PF("base")),
    case("chain-holds", "grandchild", {"plan": "pro", "region": "US"}, expect(True, "true", "RULE_MATCH", rule="g1")),
    case("chain-holds-default", "grandchild", {"plan": "pro", "region": "EU"}, expect(False, "false", "DEFAULT"), default=True),
    case("chain-fails-at-root", "grandchild", {"plan": "free", "region": "US"}, PF("child")),
    case("prerequisite-off", "child-of-off", {}, PF("offbase")),
    case("string-prereq-holds-blue", "child-color", {"likes": "blue"}, expect("yes", "yes", "DEFAULT"), typ="string", default="d"),
    case("string-prereq-holds-green", "child-color", {"likes": "green"}, expect("yes", "yes", "DEFAULT"), typ="string", default="d"),
    case("string-prereq-fails", "child-color", {"likes": "red"}, PF("color", "no", "no"), typ="string", default="d"),
    case("multi-both-hold", "child-multi", {"plan": "pro", "likes": "blue"}, expect(True, "true", "DEFAULT")),
    case("multi-first-fails", "child-multi", {"plan": "free", "likes": "blue"}, PF("base")),
    case("multi-second-fails", "child-multi", {"plan": "pro", "likes": "green"}, PF("color")),
    case("failure-beats-target", "child-multi", {"userId": "vip", "plan": "free"}, PF("base")),
    case("target-after-prereq", "child-target", {"userId": "u1", "plan": "pro"}, expect(False, "false", "TARGET_MATCH"), default=True),
    case("prereq-on-false", "child-unknown-flag-eval", {"plan": "free"}, expect(True, "true", "DEFAULT")),
    case("prereq-on-false-fails", "child-unknown-flag-eval", {"plan": "pro"}, PF("base")),
    case("base-itself", "base", {"plan": "pro"}, expect(True, "true", "RULE_MATCH", rule="r1")),
]
for u in users[:10]:
    b = bucket(SALT, "pct-base", u)
    exp = expect(True, "true", "DEFAULT") if b < 50000 else PF("pct-base")
    pre_cases.append(case("prereq-on-rollout-%s" % u, "child-of-pct", {"userId": u}, exp))
group("prerequisites", "prerequisites: holding, failing, chains, several, string variants, rollouts; failure serves the off variant", pre_config, pre_cases)

# ------------------------------------------------------------------ compile errors


def ce(name, config, what, *findings):
    """A config that must not compile, with every error it has (README:
    compile errors): each finding is (code, where) with where the keyword
    arguments flag, segment, rule, field, line, col."""
    assert findings, name
    fs = []
    for code, where in findings:
        f = {"code": code}
        f.update(where)
        fs.append(f)
    return {"name": name, "config": config, "description": what, "expect": {"compileError": True, "findings": fs}}


def F(code, **where):
    return (code, where)


def cfg(*flags, segments=None):
    c = {"environment": "conformance", "salt": SALT, "flags": list(flags)}
    if segments:
        c["segments"] = segments
    return c


# The expected findings follow the README's table of compile errors: a
# rule is named by its id ("#N", 1-based, when it has none), a finding
# about the flag's default names no rule, a cycle is reported once at its
# smallest key, and a rule condition's error is at the offending token (or
# just past the end of the text when it ends too soon), 1-based, in code
# points.
ce_cases = [
    ce("prerequisite-cycle-two", cfg({"key": "a", "prerequisites": [{"flagKey": "b", "variants": [True]}]},
                                     {"key": "b", "prerequisites": [{"flagKey": "a", "variants": [True]}]}), "a -> b -> a",
       F("prerequisite-cycle", flag="a", field="prerequisites")),
    ce("prerequisite-cycle-three", cfg({"key": "c", "prerequisites": [{"flagKey": "a", "variants": [True]}]},
                                       {"key": "b", "prerequisites": [{"flagKey": "c", "variants": [True]}]},
                                       {"key": "a", "prerequisites": [{"flagKey": "b", "variants": [True]}]}), "a -> b -> c -> a (listed c, b, a)",
       F("prerequisite-cycle", flag="a", field="prerequisites")),
    ce("prerequisite-self", cfg({"key": "a", "prerequisites": [{"flagKey": "a", "variants": [True]}]}), "a -> a",
       F("prerequisite-cycle", flag="a", field="prerequisites")),
    ce("unknown-prerequisite", cfg({"key": "a", "prerequisites": [{"flagKey": "nope", "variants": [True]}]}), "a prerequisite flag that does not exist",
       F("unknown-prerequisite", flag="a", field="prerequisites")),
    ce("duplicate-prerequisite", cfg({"key": "b"}, {"key": "a", "prerequisites": [{"flagKey": "b", "variants": [True]}, {"flagKey": "b", "variants": [False]}]}),
       "b listed twice as a prerequisite of a",
       F("duplicate-prerequisite", flag="a", field="prerequisites")),
    ce("unknown-segment", cfg(boolflag("f", segment="nope")), "rule names an unknown segment",
       F("unknown-segment", flag="f", rule="r1", field="segment")),
    ce("unknown-segment-in-when", cfg(boolflag("f", when="segment('nope')")), "segment() of an unknown segment",
       F("unknown-segment", flag="f", rule="r1", field="when")),
    ce("duplicate-rule-id", cfg({"key": "f", "rules": [{"id": "r", "when": "true", "variant": True},
                                                       {"id": "r", "when": "false", "variant": False}]}), "two rules named r",
       F("duplicate-rule-id", flag="f", rule="r", field="id")),
    ce("weights-not-100", cfg({"key": "f", "default": {"rollout": [{"variant": True, "weight": 50}, {"variant": False, "weight": 40}]}}), "weights sum to 90",
       F("weights-sum", flag="f", field="rollout")),
    ce("weights-out-of-range", cfg({"key": "f", "rules": [{"id": "r1", "when": "true", "rollout": [{"variant": True, "weight": 150}, {"variant": False, "weight": -50}]}]}),
       "weights 150 and -50 (their sum is 100)",
       F("invalid-weight", flag="f", rule="r1", field="rollout[0].weight"),
       F("invalid-weight", flag="f", rule="r1", field="rollout[1].weight")),
    ce("syntax-error", cfg(boolflag("f", when="plan == ")), "incomplete condition",
       F("syntax", flag="f", rule="r1", field="when", line=1, col=9)),
    ce("syntax-unbalanced", cfg(boolflag("f", when="(plan == 'x'")), "missing )",
       F("syntax", flag="f", rule="r1", field="when", line=1, col=13)),
    ce("invalid-regex", cfg(boolflag("f", when="s matches '('")), "regexp does not compile",
       F("syntax", flag="f", rule="r1", field="when", line=1, col=11)),
    ce("invalid-semver-literal", cfg(boolflag("f", when="semver(v) < '2.x'")), "not a version",
       F("syntax", flag="f", rule="r1", field="when", line=1, col=13)),
    ce("invalid-date-literal", cfg(boolflag("f", when="date(d) < 'yesterday'")), "not a date",
       F("syntax", flag="f", rule="r1", field="when", line=1, col=11)),
    ce("bool-variant-not-bool", cfg({"key": "f", "type": "boolean", "variants": [{"name": "on", "value": "yes"}]}), "boolean flag with a string value",
       F("type-mismatch", flag="f", field="variants[0]")),
    ce("number-variant-not-number", cfg({"key": "f", "type": "number", "variants": [{"name": "n", "value": "seven"}]}), "number flag with a string value",
       F("type-mismatch", flag="f", field="variants[0]")),
    ce("duplicate-variant", cfg({"key": "f", "type": "string", "variants": [{"name": "a"}, {"name": "b"}, {"name": "a"}]}), "variant a declared twice",
       F("duplicate-variant", flag="f", field="variants[2]")),
    ce("invalid-type", cfg({"key": "f", "type": "integer", "variants": [{"name": "one", "value": 1}]}), "type must be boolean, string, number or json",
       F("invalid-type", flag="f", field="type")),
    ce("unknown-variant-in-rule", cfg({"key": "f", "type": "string", "variants": [{"name": "a"}], "rules": [{"id": "r", "when": "true", "variant": "zzz"}]}), "rule serves an unknown variant",
       F("unknown-variant", flag="f", rule="r", field="variant")),
    ce("unknown-offvariant", cfg({"key": "f", "type": "string", "variants": [{"name": "a"}], "offVariant": "zzz"}), "offVariant names no variant",
       F("unknown-variant", flag="f", field="offVariant")),
    ce("ambiguous-serve", cfg({"key": "f", "default": {"variant": True, "rollout": [{"variant": True, "weight": 100}]}}), "the default sets both variant and rollout",
       F("ambiguous-serve", flag="f", field="variant")),
    ce("percentage-over-100", cfg({"key": "f", "default": {"variant": True, "percentage": 101}}), "percentage 101",
       F("invalid-percentage", flag="f", field="percentage")),
    ce("ramp-goes-down", cfg({"key": "f", "default": {"progressive": {"variant": True, "steps": [
        {"at": S1, "percentage": 50}, {"at": S2, "percentage": 10}]}}}), "ramp decreases",
       F("invalid-progressive", flag="f", field="progressive.steps[1]")),
    ce("invalid-state", cfg({"key": "f", "state": "paused"}), "state must be on or off",
       F("invalid-state", flag="f", field="state")),
    ce("segment-cycle", cfg(boolflag("f", segment="s1"), segments=[{"key": "s1", "when": "segment('s2')"}, {"key": "s2", "when": "segment('s1')"}]), "s1 -> s2 -> s1",
       F("segment-cycle", segment="s1", field="when")),
    ce("segment-syntax-error", cfg(boolflag("f", segment="s1"), segments=[{"key": "s1", "when": "plan in ['a', 'b'"}]), "a segment's condition that does not parse",
       F("syntax", segment="s1", field="when", line=1, col=18)),
    ce("missing-rule-id", cfg({"key": "f", "rules": [{"id": "r1", "when": "false", "variant": False}, {"when": "true", "variant": True}]}), "second rule without id",
       F("missing-rule-id", flag="f", rule="#2", field="id")),
    ce("string-flag-without-variants", cfg({"key": "f", "type": "string"}), "a string flag must declare variants",
       F("missing-variants", flag="f", field="variants")),
    ce("invalid-flag-key", cfg({"key": "has space"}), "a flag key with a space",
       F("invalid-key", flag="has space", field="flagKey")),
    ce("duplicate-flag", cfg({"key": "f"}, {"key": "f"}), "two flags named f",
       F("duplicate-flag", flag="f", field="flagKey")),
    ce("prerequisite-with-errors", cfg({"key": "a", "prerequisites": [{"flagKey": "b", "variants": [True]}]}, {"key": "b", "state": "paused"}),
       "a prerequisite that exists but does not compile is not also unknown",
       F("invalid-state", flag="b", field="state")),
    ce("errors-in-two-flags", cfg(boolflag("f", segment="nope"), {"key": "g", "state": "paused"}), "every error is reported, not only the first",
       F("unknown-segment", flag="f", rule="r1", field="segment"),
       F("invalid-state", flag="g", field="state")),
]
group("compile-errors", "configs every implementation must reject as a whole (compile error expected)", None, ce_cases)

# ------------------------------------------------------------------ types, unknown flags, JSON

types_config = {
    "environment": "conformance", "salt": SALT,
    "flags": [
        {"key": "t-bool", "rules": [{"id": "r1", "when": "true", "variant": True}]},
        {"key": "t-bool-payload", "variants": [{"name": "true", "value": True, "payload": {"color": "green", "n": 1}},
                                               {"name": "false", "value": False, "payload": {"color": "grey", "n": 0}}],
         "rules": [{"id": "r1", "when": "plan == 'pro'", "variant": True}], "default": {"variant": False}},
        {"key": "t-string", "type": "string", "variants": [{"name": "A", "value": "alpha"}, {"name": "B", "value": "beta", "payload": {"price": 23.0, "currency": "EUR"}}],
         "rules": [{"id": "r1", "when": "true", "variant": "B"}]},
        {"key": "t-string-plain", "type": "string", "variants": [{"name": "A", "value": "alpha"}], "default": {"variant": "A"}},
        {"key": "t-number", "type": "number", "variants": [{"name": "small", "value": 1.5}, {"name": "big", "value": 1000000}],
         "rules": [{"id": "r1", "when": "true", "variant": "big"}]},
        {"key": "t-number-neg", "type": "number", "variants": [{"name": "neg", "value": -0.25}], "default": {"variant": "neg"}},
        {"key": "t-json", "type": "json", "variants": [{"name": "v1", "value": {"layout": "grid", "cols": 3, "tags": ["a", "b"]}},
                                                       {"name": "v2", "value": {"layout": "list"}}],
         "rules": [{"id": "r1", "when": "plan == 'pro'", "variant": "v1"}], "default": {"variant": "v2"}},
        {"key": "t-json-array", "type": "json", "variants": [{"name": "arr", "value": [1, "two", None, True]}], "default": {"variant": "arr"}},
        {"key": "t-json-payload", "type": "json", "variants": [{"name": "v", "value": {"a": 1}, "payload": {"p": True}}], "default": {"variant": "v"}},
        {"key": "t-json-scalar-payload", "type": "json", "variants": [{"name": "dark", "value": "dark", "payload": {"bg": "#000"}}], "default": {"variant": "dark"}},
    ],
}
DEF_OBJ = {"fallback": True}
TM = lambda d: expect(d, None, "ERROR", error="TYPE_MISMATCH")
NF = lambda d: expect(d, None, "ERROR", error="FLAG_NOT_FOUND")
types_cases = [
    case("bool-as-bool", "t-bool", {}, expect(True, "true", "RULE_MATCH", rule="r1")),
    case("bool-as-string", "t-bool", {}, TM("d"), typ="string", default="d"),
    case("bool-as-number", "t-bool", {}, TM(3), typ="number", default=3),
    case("bool-as-object-no-payload", "t-bool", {}, expect(True, "true", "RULE_MATCH", rule="r1"), typ="object", default=DEF_OBJ),
    case("bool-payload-as-bool", "t-bool-payload", {"plan": "pro"}, expect(True, "true", "RULE_MATCH", rule="r1", payload={"color": "green", "n": 1})),
    case("bool-payload-as-object", "t-bool-payload", {"plan": "pro"}, expect({"color": "green", "n": 1}, "true", "RULE_MATCH", rule="r1", payload={"color": "green", "n": 1}), typ="object", default=DEF_OBJ),
    case("bool-payload-as-object-default-variant", "t-bool-payload", {}, expect({"color": "grey", "n": 0}, "false", "DEFAULT", payload={"color": "grey", "n": 0}), typ="object", default=DEF_OBJ),
    case("string-as-string", "t-string", {}, expect("beta", "B", "RULE_MATCH", rule="r1", payload={"price": 23.0, "currency": "EUR"}), typ="string", default="d"),
    case("string-as-bool", "t-string", {}, TM(False)),
    case("string-as-number", "t-string", {}, TM(0), typ="number", default=0),
    case("string-payload-as-object", "t-string", {}, expect({"price": 23.0, "currency": "EUR"}, "B", "RULE_MATCH", rule="r1", payload={"price": 23.0, "currency": "EUR"}), typ="object", default=DEF_OBJ),
    case("number-as-number", "t-number", {}, expect(1000000, "big", "RULE_MATCH", rule="r1"), typ="number", default=0),
    case("number-negative-fraction", "t-number-neg", {}, expect(-0.25, "neg", "STATIC"), typ="number", default=0),
    case("number-as-string", "t-number", {}, TM("d"), typ="string", default="d"),
    case("number-as-bool", "t-number", {}, TM(True), default=True),
    case("number-as-object-no-payload", "t-number", {}, expect(1000000, "big", "RULE_MATCH", rule="r1"), typ="object", default=DEF_OBJ),
    case("string-as-object-no-payload", "t-string-plain", {}, expect("alpha", "A", "STATIC"), typ="object", default=DEF_OBJ),
    case("json-as-object", "t-json", {"plan": "pro"}, expect({"layout": "grid", "cols": 3, "tags": ["a", "b"]}, "v1", "RULE_MATCH", rule="r1"), typ="object", default=DEF_OBJ),
    case("json-as-object-default", "t-json", {}, expect({"layout": "list"}, "v2", "DEFAULT"), typ="object", default=DEF_OBJ),
    case("json-array-as-object", "t-json-array", {}, expect([1, "two", None, True], "arr", "STATIC"), typ="object", default=DEF_OBJ),
    case("json-with-payload-gives-value", "t-json-payload", {}, expect({"a": 1}, "v", "STATIC", payload={"p": True}), typ="object", default=DEF_OBJ),
    case("json-scalar-with-payload-gives-value", "t-json-scalar-payload", {}, expect("dark", "dark", "STATIC", payload={"bg": "#000"}), typ="object", default=DEF_OBJ),
    case("json-as-bool", "t-json", {}, TM(False)),
    case("json-as-string", "t-json", {}, TM("d"), typ="string", default="d"),
    case("json-as-number", "t-json", {}, TM(5), typ="number", default=5),
    case("unknown-bool", "nope", {}, NF(True), default=True),
    case("unknown-string", "nope", {}, NF("d"), typ="string", default="d"),
    case("unknown-number", "nope", {"userId": "u1"}, NF(2.5), typ="number", default=2.5),
    case("unknown-object", "nope", {}, NF(DEF_OBJ), typ="object", default=DEF_OBJ),
    case("unknown-similar-key", "t-Bool", {}, NF(False)),
    case("unknown-empty-context", "nope2", {}, NF(False)),
]
group("types", "requested types against flag types (TYPE_MISMATCH serves the default), JSON flags and payloads, unknown flags (FLAG_NOT_FOUND)", types_config, types_cases)


# ------------------------------------------------------------- non-finite
# A number that is not finite (NaN, +Inf, -Inf) counts as null, a missing
# attribute, in every mode: JSON cannot carry one, so an SDK sends null in
# its place. The case format writes it {"$number": "NaN" | "Infinity" |
# "-Infinity"}; a path that sends JSON sends null.

def nonfinite(text):
    return {"$number": text}


nf_flags = [
    boolflag("nf-gt", when="score > 5"),
    boolflag("nf-lt", when="score < 5"),
    boolflag("nf-ne", when="score != 5"),
    boolflag("nf-has", when="has(score)"),
    boolflag("nf-nested", when="a.score > 1"),
    {"key": "nf-bucket", "bucketing": {"by": "score"}, "default": {"variant": True, "percentage": 100}},
]
nf_cases = []
for text in ("NaN", "Infinity", "-Infinity"):
    x = nonfinite(text)
    name = text.lower().replace("-", "minus-")
    for key in ("nf-gt", "nf-lt", "nf-ne", "nf-has"):
        nf_cases.append(case("%s-%s" % (key, name), key, {"score": x, "userId": "u1"}, expect(False, "false", "DEFAULT")))
    nf_cases.append(case("nf-nested-%s" % name, "nf-nested", {"a": {"score": x}}, expect(False, "false", "DEFAULT")))
    nf_cases.append(case("nf-in-list-%s" % name, "nf-has", {"score": [x, 1]}, expect(True, "true", "RULE_MATCH", rule="r1")))
    nf_cases.append(case("nf-bucket-%s" % name, "nf-bucket", {"score": x},
                         expect(False, "false", "DEFAULT", error="MISSING_BUCKETING_ATTRIBUTE")))
group("non-finite", "numbers that are not finite (NaN, Infinity, -Infinity; written {\"$number\": ...}) count as null: every test on them is false, has() is false, they cannot bucket", {"environment": "conformance", "salt": SALT, "flags": nf_flags}, nf_cases)


def main():
    out = os.path.join(ROOT, "cases")
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        if f.endswith(".json"):
            os.remove(os.path.join(out, f))
    total = 0
    for name, g in GROUPS.items():
        if g["config"] is None:
            del g["config"]
        seen = set()
        for c in g["cases"]:
            assert c["name"] not in seen, (name, c["name"])
            seen.add(c["name"])
        total += len(g["cases"])
        with open(os.path.join(out, name + ".json"), "w", encoding="utf-8") as f:
            f.write(dumps(g) + "\n")
    print("%d cases in %d files" % (total, len(GROUPS)))


if __name__ == "__main__":
    main()
