import collections
import re

_WORD = re.compile(r"[a-z']+")


def words(line):
    return _WORD.findall(line.lower())


def word_count(line):
    return len(words(line))


def top_words(lines, n=3):
    counter = collections.Counter()
    for line in lines:
        counter.update(words(line))
    return [w for w, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]
