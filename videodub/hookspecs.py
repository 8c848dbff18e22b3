"""The whole extension API of videodub: one registration hook per pipeline stage.

Each hook receives a ``register`` callback::

    register(name, factory, config=None, description="")

- ``name`` is what users select on the command line (``tts=<name>``).
- ``factory(config)`` returns the stage object; it is called once per job with the
  validated config (an instance of ``config``).
- ``config`` is a dataclass holding the implementation's options, with defaults.
  Its fields become ``<stage>.<field>=...`` command-line keys.

Built-in implementations (``videodub/builtin``) use exactly these hooks.
"""

import pluggy

hookspec = pluggy.HookspecMarker("videodub")


@hookspec
def register_ingesters(register):
    """Register ingest implementations: probe the input and extract its audio."""


@hookspec
def register_transcribers(register):
    """Register transcribe implementations: speech to timed source-language segments."""


@hookspec
def register_translators(register):
    """Register translate implementations: source segments to target-language segments."""


@hookspec
def register_aligners(register):
    """Register align implementations: fit each target line to its time slot."""


@hookspec
def register_tts(register):
    """Register tts implementations: target text to a speech clip."""


@hookspec
def register_mixers(register):
    """Register mix implementations: place clips over the original background."""


@hookspec
def register_muxers(register):
    """Register mux implementations: write the final video with its tracks."""


# -- observer hooks: called around every job, for plugins that watch runs rather than do
# their work (the run history in ``videodub/perf/`` is one). An observer that raises is
# logged and ignored: watching a job never fails it.


@hookspec
def job_started(job, run_dir):
    """A job is about to run: ``job`` is its validated ``JobConfig``, ``run_dir`` its folder."""


@hookspec
def stage_finished(job, stage, stats):
    """A stage ended: ``stats`` is its entry in ``report.json`` (``wall_s``, ``cpu_s`` ...)."""


@hookspec
def job_finished(job, run_dir, report):
    """A job ended, ok or not: ``report`` is the ``report.json`` dict, before it is written,
    so an observer may add a section of its own to it."""


@hookspec
def perf_rules(register):
    """Register advisor rules: ``register(name, rule, description="")``, where ``rule(facts)``
    returns a list of ``videodub.perf.advisor.Recommendation`` (docs/monitoring.md)."""
