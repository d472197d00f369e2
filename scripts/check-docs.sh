#!/usr/bin/env bash
# Checks the documentation (run by .ci/run; Python 3 standard library only):
# 1. every link in README.md and docs/*.md resolves: a relative link names a file or folder of
#    the repository (never one outside it), a #fragment names a heading of its target page
#    (GitHub's anchor rules), and a link leaving the repository goes to public documentation only
#    (the hosts listed below);
# 2. every key of the shipped gateway.yaml, commented-out example keys included, appears in
#    docs/configuration.md (as its dotted path in a code span, e.g. `dataverse.url`, or beside its
#    parent in one, e.g. `certificate: { cert_file, key_file }`).
# Exit 1 listing every problem, 0 when there is none.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import html
import os
import re
import sys
import unicodedata
from urllib.parse import unquote, urlsplit

ROOT = os.getcwd()
PAGES = ["README.md"] + sorted(
    os.path.join("docs", f) for f in os.listdir("docs") if f.endswith(".md")
)
CONFIG_REFERENCE = "docs/configuration.md"
SHIPPED_CONFIG = "gateway.yaml"
# Links may leave the repository only for public documentation.
PUBLIC_DOCS = {
    "learn.microsoft.com",
    "datatracker.ietf.org",
    "www.rfc-editor.org",
    "docs.rs",
    "doc.rust-lang.org",
    "kubernetes.io",
    "redis.io",
    "prometheus.io",
}

problems = []


def strip_code(text):
    """The text without fenced code blocks and inline code spans (links there are not links)."""
    text = re.sub(r"^```.*?^```[ \t]*$", "", text, flags=re.S | re.M)
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", text, flags=re.S)


def slug(heading):
    """GitHub's anchor for a heading: formatting dropped, lower case, punctuation removed,
    spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = html.unescape(text.replace("`", "")).strip().lower()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch == " ":
            out.append("-")
        elif ch in "-_" or cat[0] in "LNM":
            out.append(ch)
    return "".join(out)


def anchors(path):
    seen = {}
    result = set()
    in_fence = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("```"):
                in_fence = not in_fence
                continue
            m = None if in_fence else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if m:
                base = slug(m.group(1))
                n = seen.get(base, 0)
                seen[base] = n + 1
                result.add(base if n == 0 else f"{base}-{n}")
    return result


def check_links(page):
    with open(page, encoding="utf-8") as f:
        text = strip_code(f.read())
    targets = re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text)
    targets += re.findall(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", text, flags=re.M)
    for target in targets:
        parts = urlsplit(target)
        if parts.scheme in ("http", "https"):
            if parts.hostname not in PUBLIC_DOCS:
                problems.append(f"{page}: link {target} leaves the repository for "
                                f"{parts.hostname}, which is not public documentation")
            continue
        if parts.scheme or parts.netloc:
            problems.append(f"{page}: link {target}: only relative links and public "
                            "documentation are allowed")
            continue
        base = os.path.dirname(page)
        dest = os.path.normpath(os.path.join(base, unquote(parts.path))) if parts.path else page
        if os.path.relpath(os.path.join(ROOT, dest), ROOT).startswith(".."):
            problems.append(f"{page}: link {target} points outside the repository")
            continue
        if not os.path.exists(dest):
            problems.append(f"{page}: link {target}: {dest} does not exist")
            continue
        if parts.fragment:
            if not dest.endswith(".md") or os.path.isdir(dest):
                problems.append(f"{page}: link {target}: a #fragment needs a Markdown page")
            elif unquote(parts.fragment) not in anchors(dest):
                problems.append(f"{page}: link {target}: no heading of {dest} has the "
                                f"anchor #{parts.fragment}")


KEY = re.compile(r"^(?P<indent> *)(?:(?P<hash>#)(?P<pad> *))?(?P<dash>- +)?"
                 r"(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?:\s|$)(?P<rest>.*)$")


def config_keys(path):
    """Every key path of the file, commented-out example keys included. A commented key's depth
    is where its `#` stands plus the spaces after the first one (`# tls:` is at column 0,
    `#   cert_file:` at 2, `  # request_head:` at 2). Tenant and table names become `*`."""
    keys = set()
    stack = []  # (column, name)
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = KEY.match(line.rstrip("\n"))
            if not m:
                continue
            col = len(m["indent"])
            if m["hash"]:
                pad = len(m["pad"])
                if pad == 0:
                    continue  # "#key:" is prose, not an example key
                col += pad - 1
            if m["dash"]:
                col += len(m["dash"])  # `- name:`: the key stands after the dash
            while stack and stack[-1][0] >= col:
                stack.pop()
            parents = [name for _, name in stack]
            name = m["key"]
            keypath = parents + [name]
            keys.add(normalize(keypath))
            rest = m["rest"].split(" #")[0].strip()
            if rest.startswith("{"):
                for inner in flow_keys(rest):
                    keys.add(normalize(keypath + inner))
            stack.append((col, name))
    return keys


def flow_keys(text):
    """Key paths of a one-line flow mapping: `{ a: 1, b: { c: 2 } }` gives a, b, b.c."""
    out, stack, last = [], [], None
    for token in re.findall(r"[A-Za-z_][A-Za-z0-9_]*\s*:(?=\s|$)|[{}]", text):
        if token == "{":
            if last is not None:
                stack.append(last)
            last = None
        elif token == "}":
            last = stack.pop() if stack else None
        else:
            last = token.rstrip(" :")
            out.append(stack + [last])
    return out


def normalize(keypath):
    out = list(keypath)
    if len(out) > 1 and out[0] == "tenants":
        out[1] = "*"
    if len(out) > 3 and out[0] == "tenants" and out[2] == "allow":
        out[3] = "*"
    # clients[N].policy.<tenant>: a tenant name, and its allow: entries table names.
    if len(out) > 2 and out[0] == "clients" and out[1] == "policy":
        out[2] = "*"
    if len(out) > 4 and out[0] == "clients" and out[1] == "policy" and out[3] == "allow":
        out[4] = "*"
    return tuple(out)


def documented(reference):
    """Code spans of the reference, and the dotted key paths written in them."""
    with open(reference, encoding="utf-8") as f:
        text = html.unescape(f.read())
    spans = re.findall(r"(`+)((?:(?!\1).)+?)\1", text, flags=re.S)
    spans = [s for _, s in spans]
    paths = set()
    for s in spans:
        for p in re.findall(r"[A-Za-z_<>\[\]]+(?:\.[A-Za-z_<>\[\]]+)*", s):
            p = re.sub(r"\[N\]", "", p)
            segs = tuple("*" if re.fullmatch(r"<[a-z]+>", x) else x for x in p.split("."))
            paths.add(segs)
    return spans, paths


def check_config_keys():
    spans, paths = documented(CONFIG_REFERENCE)
    for key in sorted(config_keys(SHIPPED_CONFIG)):
        n = len(key)
        if any(key[i:] in paths for i in range(0, max(1, n - 1))):
            continue
        if n >= 2 and any(re.search(rf"\b{re.escape(key[-2])}\b.*\b{re.escape(key[-1])}\b", s)
                          for s in spans):
            continue
        problems.append(f"{CONFIG_REFERENCE}: the key {'.'.join(key)} of {SHIPPED_CONFIG} "
                        "is not documented")


for page in PAGES:
    check_links(page)
check_config_keys()
for p in problems:
    print(p, file=sys.stderr)
if problems:
    sys.exit(1)
print(f"docs: links in {len(PAGES)} pages resolve; every key of {SHIPPED_CONFIG} is documented")
PY
