"""How readable the subtitles videodub writes are: where lines break, how wide they are, and
how long each cue stays up.

**Layout.** Sixteen lines of a talk in Chinese and sixteen in Japanese, laid out at every
width from 12 to 42 columns: the share of line breaks that fall inside a word, as an
independent segmenter finds the words (jieba for Chinese, MeCab's unidic-lite through fugashi
for Japanese; neither is a dependency of videodub: ``pip install jieba fugashi unidic-lite``,
and without them this part says so and is skipped). Then the lines at the default layout
against the style guides' widths (Chinese 16 characters a line, Japanese 13), and the same
with every language at 42 columns (``subtitles.line_columns_by_lang={}``) as the baseline.

**Timing.** The generated 60 s talk (bench_pipeline's), dubbed into Spanish with each
profile, twice: with cues held into the silence after their speech (the default) and with
``subtitles.max_extend_s=0`` (the speech's own times) as the baseline, in the same run. For
both subtitle files of each run: cues, cues up for less than 5/6 s, cues faster than 20
characters a second, and pairs of cues on screen at once.

    .venv/bin/python benchmarks/bench_subtitles.py [--profiles speed balanced] [--skip-dubs]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

ZH = ["早上好，感谢大家今天的到来。", "这次演讲讲的是自行车的历史。", "最早的自行车根本没有踏板。",
      "骑车的人用脚推着它们前进。", "后来，工程师们把踏板装在了前轮上。", "这就是为什么前轮变得那么大。",
      "那些高大的机器速度很快，但相当危险。", "链条改变了普通人的一切。", "两个轮子终于可以一样大了。",
      "充气轮胎让长途骑行舒服多了。", "很快，数以百万计的工人骑车去上班。",
      "女性在两个轮子上获得了一种新的自由。", "今天，城市正在为骑车的人修建更安全的车道。",
      "电动马达现在帮助骑车的人爬上陡峭的山坡。",
      "他说：“我们今天会讨论三个简单的想法。”然后他就走了，大家都很高兴。",
      "自行车仍然是世界上最有效率的交通工具之一，也是最便宜的交通工具之一。"]
JA = ["おはようございます。今日はお集まりいただきありがとうございます。",
      "この講演は自転車の歴史についてのお話です。", "最初の自転車にはペダルがまったくありませんでした。",
      "乗る人は足で地面を蹴って進んでいました。", "その後、技術者たちは前輪にペダルを取り付けました。",
      "だから前輪がとても大きくなったのです。", "背の高い自転車は速かったけれど、かなり危険でした。",
      "チェーンが普通の人々にとってすべてを変えました。",
      "ついに両方の車輪を同じ大きさにできるようになりました。",
      "空気入りタイヤのおかげで長距離の移動がずっと快適になりました。",
      "やがて何百万人もの労働者が自転車で通勤するようになりました。",
      "女性は二つの車輪の上で新しい自由を手に入れました。",
      "今日、都市は自転車に乗る人のためにより安全な車線を作っています。",
      "電動モーターは今や急な坂を上るのを助けてくれます。",
      "東京都知事選挙管理委員会事務局長が記者会見を開きました。",
      "ご覧いただきありがとうございました。また次回お会いしましょう。"]
GUIDE_COLUMNS = {"zh": 32, "ja": 26}  # 16 and 13 full-width characters


def table(headers: list[str], rows: list[list]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def word_ends(lang: str):
    """A function giving the word ends (character offsets) of a text, or None."""
    try:
        if lang == "zh":
            import jieba

            jieba.setLogLevel(logging.WARNING)
            words = jieba.lcut
        else:
            import fugashi

            tagger = fugashi.Tagger()
            words = lambda text: [w.surface for w in tagger(text)]  # noqa: E731
    except Exception:  # noqa: BLE001 - an optional judge: missing, or its dictionary is
        return None

    def ends(text: str) -> set[int]:
        out, at = set(), 0
        for word in words(text):
            at += len(word)
            out.add(at)
        return out

    return ends


def narrow(text: str, width: int, lang: str) -> list[str]:
    """``text`` laid out ``width`` columns wide whatever its language; on the code before
    line breaking knew the language (c60f0ad and earlier) as that code did, to compare."""
    from videodub.subtitles import SubtitleLayout, layout_cue

    try:
        return layout_cue(text, SubtitleLayout(max_line_chars=width, line_columns_by_lang={}),
                          lang)
    except TypeError:
        return layout_cue(text, SubtitleLayout(max_line_chars=width))


def layout() -> None:
    print("line breaks inside a word, widths 12 to 42 columns (16 lines each)")
    rows = []
    for lang, lines in (("zh", ZH), ("ja", JA)):
        ends = word_ends(lang)
        if ends is None:
            rows.append([lang, "-", "-", "jieba / fugashi + unidic-lite not installed"])
            continue
        breaks = inside = 0
        for width in range(12, 43, 2):
            for text in lines:
                cues = narrow(text, width, lang)
                at, bounds = 0, ends(text)
                for line in [x for cue in cues for x in cue.split("\n")][:-1]:
                    at += len(line)
                    breaks += 1
                    inside += at not in bounds
        rows.append([lang, breaks, inside, f"{inside / breaks:.0%}"])
    print(table(["lang", "breaks", "inside a word", "share"], rows))
    from videodub.subtitles import SubtitleLayout, layout_cue

    if not hasattr(SubtitleLayout, "width"):
        return  # the code before language-aware widths
    from videodub.linebreak import columns

    print("\nthe default layout against every language at 42 columns")
    rows = []
    for lang, lines in (("zh", ZH), ("ja", JA)):
        for name, chosen in (("42 columns", SubtitleLayout(line_columns_by_lang={})),
                             ("default", SubtitleLayout())):
            laid = [x for text in lines for cue in layout_cue(text, chosen, lang)
                    for x in cue.split("\n")]
            cues = sum(len(layout_cue(text, chosen, lang)) for text in lines)
            rows.append([lang, name, cues, len(laid), max(map(columns, laid)),
                         sum(columns(x) > GUIDE_COLUMNS[lang] for x in laid)])
    print(table(["lang", "layout", "cues", "lines", "widest (columns)",
                 "lines over the guide's width"], rows))


def figures(path: Path) -> list:
    import srt

    cues = list(srt.parse(path.read_text(encoding="utf-8")))
    shown = [max((c.end - c.start).total_seconds(), 1e-3) for c in cues]
    cps = [len(c.content.replace("\n", " ")) / s for c, s in zip(cues, shown)]
    together = sum(b.start < a.end for a, b in zip(cues, cues[1:]))
    return [len(cues), sum(s < 5 / 6 - 1e-3 for s in shown), sum(v > 20 for v in cps),
            f"{max(cps):.1f}", together]


def timing(profiles: list[str]) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_pipeline as bp

    from videodub.api import dub

    logging.disable(logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-subtitles-") as tmp:
        root = Path(tmp)
        video, srt_file, _ = bp.build_talk(root, 60.0)
        for profile in profiles:
            for name, extra in (("speech's times", ["subtitles.max_extend_s=0"]),
                                ("held", [])):
                run = root / f"{profile}-{len(rows)}"
                result = dub([*bp.overrides(video, srt_file, profile), *extra], run)
                for kind in ("source_srt", "target_srt"):
                    path = run / result.report["outputs"][kind]
                    rows.append([profile, name, path.name, *figures(path)])
    print("\nthe 60 s talk's subtitle files, cues held and at the speech's times")
    print(table(["profile", "times", "file", "cues", "up < 5/6 s", "over 20 chars/s",
                 "fastest chars/s", "two at once"], rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", nargs="+", default=["speed", "balanced"])
    ap.add_argument("--skip-dubs", action="store_true", help="the layout part only")
    args = ap.parse_args()
    layout()
    if not args.skip_dubs:
        timing(args.profiles)


if __name__ == "__main__":
    main()
