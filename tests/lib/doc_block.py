#!/usr/bin/env python3
"""Print the first fenced code block that follows a marker in a document.

    doc_block.py FILE 'MARKER'

The marker is text of a line before the block (the block may be indented,
inside a list item: it is printed dedented) (the docs say there which
test runs the block); exits 1 with a message when either is missing, so a
test that runs a documented block fails when the docs change under it.
"""
import sys


def main():
    path, marker = sys.argv[1], sys.argv[2]
    lines = open(path, encoding="utf-8").read().split("\n")
    # the marker may be wrapped over two lines of the paragraph
    joined = [" ".join(lines[i:i + 2]) for i in range(len(lines))]
    start = next((i for i, l in enumerate(joined) if marker in l), None)
    if start is None:
        sys.exit("%s: no line with %r" % (path, marker))
    i = start
    while i < len(lines) and not lines[i].lstrip().startswith("```"):
        i += 1
    end = i + 1
    while end < len(lines) and not lines[end].lstrip().startswith("```"):
        end += 1
    if i >= len(lines) or end >= len(lines):
        sys.exit("%s: no code block after %r" % (path, marker))
    # a block inside a list item is indented like its fence
    indent = len(lines[i]) - len(lines[i].lstrip())
    print("\n".join(l[indent:] if l[:indent].strip() == "" else l for l in lines[i + 1:end]))


if __name__ == "__main__":
    main()
