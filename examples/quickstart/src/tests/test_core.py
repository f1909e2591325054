from textstats import top_words


def test_top_words():
    assert top_words(["a b a", "b a c"], 2) == ["a", "b"]
