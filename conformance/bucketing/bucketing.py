#!/usr/bin/env python3
"""Flagwire bucketing, implemented a second time, in Python (stdlib only).

It shares no code with the Go engine; it follows the specification in the
README ("Bucketing specification"):

    hash   = SHA-256( UTF-8(salt) ":" UTF-8(seed) ":" UTF-8(id) )
    bucket = uint64(big-endian hash[0:8]) mod 100000

A rollout with weights w1, w2, ... (percent, up to three decimals) gives
variant i the buckets [1000*(w1+...+w(i-1)), 1000*(w1+...+wi)).

Canonical id forms: a string is its bytes (empty = missing); true/false are
"true"/"false"; an integer-valued number (1, 1.0, 1e3, -0, exact big
literals) is its exact integer in decimal; any other number is the shortest
decimal that round-trips to the same IEEE-754 double, in plain notation; null,
lists and objects are missing.

Usage:
    python3 conformance/bucketing/bucketing.py            # vectors + case files
    python3 conformance/bucketing/bucketing.py FILE...    # only these files

It checks evaluate/testdata/bucketing_vectors.json (both the string-id and the
JSON-valued-id vector shapes) and every expected bucket in
conformance/cases/*.json, prints "N passed, M failed" and exits 1 on any
mismatch.
"""

import decimal
import glob
import hashlib
import json
import os
import sys

BUCKETS = 100000
MISSING = None

_ctx = decimal.Context(prec=2000)


def loads(text):
    """Decodes JSON keeping every number exact (decimal.Decimal)."""
    return json.loads(text, parse_float=decimal.Decimal, parse_int=decimal.Decimal)


def _plain(d):
    """Formats a Decimal in plain notation without exponent or trailing zeros."""
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s in ("-0", ""):
        s = "0"
    return s


def canonical_number(d):
    """The canonical id form of a JSON number given as a Decimal (or int/float),
    or None when the number cannot be an id (beyond the binary64 range).

    An integral value is its exact integer in decimal (-0 is 0). Any other
    value is the binary64 nearest to it: its exact integer when that is
    integral, else its shortest round-tripping decimal, in plain notation.
    """
    if isinstance(d, bool):
        raise TypeError("bool is not a number")
    if isinstance(d, int):
        d = decimal.Decimal(d)
    if isinstance(d, float):
        d = decimal.Decimal(repr(d))
    if d.is_zero():
        return "0"
    try:
        f = float(d)
    except OverflowError:
        f = float("inf")
    if f in (float("inf"), float("-inf")):
        return None  # beyond binary64: missing
    if d == d.to_integral_value(context=_ctx):
        return str(int(d))  # exact integer, any length
    if f == int(f):
        return str(int(f))  # the nearest double is integral
    return _plain(decimal.Decimal(repr(f)))


def canonical_id(v):
    """The bytes hashed for an attribute value, or None when it is missing."""
    if v is None:
        return MISSING
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v if v != "" else MISSING
    if isinstance(v, (int, float, decimal.Decimal)):
        return canonical_number(v)
    return MISSING  # lists, objects


def hash_of(salt, seed, id_str):
    return hashlib.sha256(
        salt.encode("utf-8") + b":" + seed.encode("utf-8") + b":" + id_str.encode("utf-8")
    ).digest()


def bucket_of(salt, seed, id_str):
    h = hash_of(salt, seed, id_str)
    return int.from_bytes(h[:8], "big") % BUCKETS


def threshold(percent):
    """Buckets covered by a percentage: [0, 1000*percent)."""
    p = decimal.Decimal(str(percent))
    if p <= 0:
        return 0
    if p >= 100:
        return BUCKETS
    return int((p * 1000).to_integral_value(rounding=decimal.ROUND_HALF_UP))


def slice_of(bucket, weights):
    """Index of the rollout slice holding bucket (the last one absorbs rounding)."""
    total = decimal.Decimal(0)
    for i, w in enumerate(weights):
        total += decimal.Decimal(str(w))
        if bucket < threshold(total):
            return i
    return len(weights) - 1


def lookup(ctx, path):
    cur = ctx
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


# ---------------------------------------------------------------- vectors


def check_vectors(path, report):
    with open(path, encoding="utf-8") as f:
        data = loads(f.read())
    if isinstance(data, dict):
        vectors = [("vectors", i, v) for i, v in enumerate(data.get("vectors", []))]
        vectors += [("numericVectors", i, v) for i, v in enumerate(data.get("numericVectors", []))]
    else:
        vectors = [("vectors", i, v) for i, v in enumerate(data)]
    for section, i, v in vectors:
        name = "%s %s[%d]" % (os.path.basename(path), section, i)
        salt, seed = v.get("salt", ""), v.get("seed", "")
        raw = v.get("id")
        if "idJSON" in v or "idJson" in v:
            raw = v.get("idJSON", v.get("idJson"))
            if isinstance(raw, str):  # JSON text of the id
                raw = loads(raw)
        if isinstance(raw, str) and not any(k in v for k in ("idJSON", "idJson", "idType")):
            id_str = raw  # old shape: the raw string hashed as is (even "")
        else:
            id_str = canonical_id(raw)
        for key in ("canonical", "canonicalId", "idCanonical", "hashed"):
            if key in v and v[key] is not None and id_str is not None:
                report(name + " canonical", v[key] == id_str, "canonical %r, want %r" % (id_str, v[key]))
        if v.get("missing") and id_str is not None:
            report(name + " missing", False, "id %r hashes as %r but the vector says it is missing" % (raw, id_str))
            continue
        if id_str is None:
            want_missing = v.get("missing", v.get("bucket") is None)
            report(name + " missing", bool(want_missing), "id %r is missing but the vector has a bucket" % (raw,))
            continue
        h = hash_of(salt, seed, id_str)
        b = int.from_bytes(h[:8], "big") % BUCKETS
        if "hash" in v:
            report(name + " hash", h.hex() == v["hash"], "hash %s, want %s" % (h.hex(), v["hash"]))
        if "bucket" in v and v["bucket"] is not None:
            report(name + " bucket", b == int(v["bucket"]), "bucket %d, want %s" % (b, v["bucket"]))
        if v.get("weights") is not None and v.get("variant") is not None:
            got = slice_of(b, v["weights"])
            report(name + " variant", got == int(v["variant"]), "variant %d, want %s" % (got, v["variant"]))


# ---------------------------------------------------------------- case files


def serve_of(flag, rule_id):
    if rule_id:
        for r in flag.get("rules", []):
            if r.get("id") == rule_id:
                return r
        return None
    return flag.get("default") or {}


def check_cases(path, report):
    with open(path, encoding="utf-8") as f:
        group = loads(f.read())
    for c in group.get("cases", []):
        exp = c.get("expect") or {}
        if exp.get("bucket") is None:
            continue
        name = "%s/%s" % (os.path.basename(path), c.get("name"))
        cfg = c.get("config", group.get("config"))
        flags = {fl["key"]: fl for fl in cfg.get("flags", [])}
        flag = flags.get(c["flag"])
        if flag is None:
            report(name, False, "flag %r not in config" % c["flag"])
            continue
        sv = serve_of(flag, exp.get("ruleId"))
        if sv is None:
            report(name, False, "rule %r not found" % exp.get("ruleId"))
            continue
        bk = flag.get("bucketing") or {}
        seed = sv.get("seed") or bk.get("seed") or flag["key"]
        by = bk.get("by") or "userId"
        id_str = canonical_id(lookup(c.get("context") or {}, by))
        if id_str is None:
            report(name, False, "expects bucket %s but the bucketing attribute %r is missing" % (exp["bucket"], by))
            continue
        b = bucket_of(cfg.get("salt", ""), seed, id_str)
        report(name, b == int(exp["bucket"]), "bucket %d, want %s" % (b, exp["bucket"]))


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    passed, failed = [0], [0]

    def report(name, ok, msg):
        if ok:
            passed[0] += 1
        else:
            failed[0] += 1
            print("FAIL %s: %s" % (name, msg))

    files = argv[1:]
    if not files:
        vec = os.path.join(root, "evaluate", "testdata", "bucketing_vectors.json")
        if os.path.exists(vec):
            files.append(vec)
        files += sorted(glob.glob(os.path.join(root, "conformance", "cases", "*.json")))
    for p in files:
        if os.path.basename(p).startswith("bucketing_vectors"):
            check_vectors(p, report)
        else:
            check_cases(p, report)
    print("%d passed, %d failed" % (passed[0], failed[0]))
    return 1 if failed[0] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
