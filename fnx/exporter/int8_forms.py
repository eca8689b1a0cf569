"""The int8 forms of one export: a target's forms for this model (each also with GELU written as x*sigmoid(1.702x)
for T0/T1, where the target measures that), what `--int8-form` asked, and how the form is chosen: measured here
(auto), by the target's rule (`--target`), as asked, or the only candidate. fnx.calibration.form_search does it."""

from __future__ import annotations

from dataclasses import dataclass

from fnx.calibration.forms import SIGMOID_GELU, Int8Form
from fnx.calibration.options import AUTO_FORM, DEFAULT_FORM, Int8Options
from fnx.errors import FnxError
from fnx.exporter.formats import FORMATS, ArtifactFormat
from fnx.exporter.options import ExportOptions
from fnx.manifest_forms import Int8FormTrial


@dataclass(frozen=True)
class FormOption:
    """One int8 form an export can write: the target's form and the GELU form ("exact" or "sigmoid")."""

    form: Int8Form
    gelu: str = "exact"

    @property
    def name(self) -> str:
        return self.form.name + (SIGMOID_GELU if self.gelu == "sigmoid" else "")

    @property
    def description(self) -> str:
        return self.form.description + ("; GELU written as x*sigmoid(1.702x)" if self.gelu == "sigmoid" else "")


@dataclass(frozen=True)
class FormPick:
    """The forms to measure (or the one to use), what was asked, how it is chosen and why, and the forms auto left
    out (as trials saying why)."""

    options: list[FormOption]
    asked: str
    how: str
    reason: str
    left_out: list[Int8FormTrial]


def form_names(fmt: ArtifactFormat) -> list[str]:
    """Return every name `--int8-form` takes for fmt: its forms, and their sigmoid-GELU forms where it measures those."""
    names = [f.name for f in fmt.int8_forms]
    return names + [n + SIGMOID_GELU for n in names] if fmt.int8_gelu_forms else names


def all_form_names() -> list[str]:
    """Return every form name of every registered format with an int8 path (the CLI's --int8-form choices)."""
    return list(dict.fromkeys(n for f in FORMATS.values() if f.int8_quantizer is not None for n in form_names(f)))


def has_choice(fmt: ArtifactFormat) -> bool:
    """Whether fmt writes int8 in more than one form (the manifest then records how one was chosen)."""
    return len(form_names(fmt)) > 1


def gelu_forms(fmt: ArtifactFormat, gelu_variant: bool, opts: ExportOptions) -> tuple[str, ...]:
    """Return the GELU forms this export's int8 may take: the one --gelu-form asked (or a QAT graph's exact one), or
    both for a GELU variant (T0/T1) where fmt measures them."""
    if opts.gelu_form != "exact" or opts.from_qat is not None or not (gelu_variant and fmt.int8_gelu_forms):
        return (opts.gelu_form,)
    return ("exact", "sigmoid")


def pick_forms(fmt: ArtifactFormat, int8: Int8Options, gelus: tuple[str, ...] = ("exact",)) -> FormPick:
    """Return what fmt's int8 conversion does about forms, given the GELU forms it may take (`gelu_forms`; the first
    is the one --gelu-form asked)."""
    options = [FormOption(f, g) for g in gelus for f in fmt.int8_forms]
    asked = int8.form
    if asked == DEFAULT_FORM:
        first = next(o for o in options if o.form.name == fmt.int8_forms[0].name and o.gelu == gelus[0])
        return FormPick([first], asked, "default", f"{fmt.name}'s default form (--int8-form default: not measured)", [])
    if asked != AUTO_FORM and asked in form_names(fmt):
        match = [o for o in options if o.name == asked or (o.form.name == asked and o.gelu == gelus[0])]
        if not match:
            raise FnxError(f"--int8-form {asked} writes GELU as x*sigmoid(1.702x), and this model has no GELU to "
                           f"rewrite: use {asked.removesuffix(SIGMOID_GELU)} (FasterNet-T0 and T1 have GELU)")
        return FormPick(match[:1], asked, "asked", "as asked (--int8-form)", [])
    if profile_target(int8) is not None:
        name, why = fmt.int8_form_rule(int8.target)
        rule = next(o for o in options if o.form.name == name and o.gelu == gelus[0])
        return FormPick([rule], AUTO_FORM, "rule", f"--target {int8.target}: {why}", [])
    auto = [o for o in options if o.form.auto]
    left_out = [Int8FormTrial(o.name, o.description, why_not=f"not measured by auto: {o.form.not_auto}")
                for o in options if not o.form.auto]
    if len(auto) == 1:
        return FormPick(auto, AUTO_FORM, "only", "the only form auto measures for this model", left_out)
    return FormPick(auto, AUTO_FORM, "measured", "", left_out)


def profile_target(int8: Int8Options) -> str | None:
    """Return --target where it names a device profile (whose rule chooses the int8 form), None where it is absent or
    names a device a format's files are compiled for (an Ethos-U configuration: no form rule)."""
    from fnx.formats import target_format

    return int8.target if int8.target is not None and target_format(int8.target) is None else None


def check_form_options(opts: ExportOptions, formats: list[ArtifactFormat], int8: bool) -> None:
    """FnxError for --int8-form or --target that this export cannot use: no int8 export, or a form name that none
    of its formats writes (listing theirs)."""
    given = "--target" if profile_target(opts.int8) is not None else "--int8-form" if opts.int8.form != AUTO_FORM else None
    if given is None:
        return
    if not int8:
        raise FnxError(f"{given} chooses an int8 form, and this export makes no int8 artifact: drop {given}, or add "
                       f"--precision int8")
    makers = [f for f in formats if f.int8_quantizer is not None]
    if opts.int8.form not in (AUTO_FORM, DEFAULT_FORM) and not any(opts.int8.form in form_names(f) for f in makers):
        known = "; ".join(f"{f.name}: {', '.join(form_names(f))}" for f in makers)
        raise FnxError(f"no format of this export has the int8 form {opts.int8.form!r} (its forms: {known}); use "
                       f"--int8-form auto to measure them")
