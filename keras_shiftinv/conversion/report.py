"""What `convert` did, site by site."""

import dataclasses

from keras_shiftinv._renames import renamed_fields


@dataclasses.dataclass
class SiteRecord:
    """One downsampling site of the original model.

    Args:
        path: the layer's name, prefixed by its nested models (`"outer/inner"`).
        layer: the original layer's class name.
        kernel: `(kh, kw)` kernel or pool size.
        stride: its stride.
        status: `"replaced"`, `"kept"` (method `"stride"`) or `"refused"`;
            `"planned"` in the report of a `ConversionError` (the conversion
            stopped before it).
        replacement: the layers that replace it, by class, in order.
        fit_error: relative Frobenius error of the fitted module's folded
            kernel against the original op written as a half-grid convolution
            (module methods); 0 means exact; None where nothing is fitted.
        calibration_error: with `calibration_data`, the relative error of the
            module's output against the original strided op on the
            calibration activations that reach it (after the refit); None
            otherwise.
        calibration_error_before: the same error of the white-noise fit (before
            the refit), on the same activations.
        phase: `"chooses"`, `"reuses <path>"` or `""` (phase-choosing methods).
        reason: why a site was refused, or a note on its fit.
    """

    path: str
    layer: str
    kernel: tuple
    stride: int
    status: str
    replacement: str = ""
    fit_error: float = None
    calibration_error: float = None
    calibration_error_before: float = None
    phase: str = ""
    reason: str = ""


@renamed_fields(downsample="method")
@dataclasses.dataclass
class ConversionReport:
    """The report `convert` returns next to the new model; `print()` it.

    Args:
        model: the original model's name.
        method: the downsampling method (`downsample`: its old name).
        padding: `None` or `"circular"`.
        sites: one `SiteRecord` per site found.
        paddings_made_circular: how many pads were turned circular.
        notes: anything else the user should know (one line each).
        circular_invariant: for the aligned methods (`"aps"`, `"group-aps"`,
            `"conv3d-aps"`) with `padding="circular"`: True if the converted
            model's outputs are exactly invariant to circular shifts of
            inputs whose sides are multiples of the total stride, False if
            not; None for the other methods and paddings. Established by a
            check of the converted graph (`invariance_breaks`).
        invariance_breaks: where `circular_invariant` is False, the layers
            that break it, one `"path (Class): reason"` line each.
        fits_run: how many least-squares fits of a module ran (0 in the
            report of a refused conversion: refusals come first).

    Example:
    >>> report = ConversionReport("m", "blur", None, [SiteRecord("conv", "Conv2D", (3, 3), 2, "replaced", "Conv2D, BlurPool2D")])
    >>> report.counts()
    {'found': 1, 'replaced': 1, 'kept': 0, 'refused': 0}
    """

    model: str
    method: str
    padding: str
    sites: list
    paddings_made_circular: int = 0
    notes: list = dataclasses.field(default_factory=list)
    circular_invariant: bool = None
    invariance_breaks: list = dataclasses.field(default_factory=list)
    fits_run: int = 0

    def counts(self):
        statuses = [site.status for site in self.sites]
        return {
            "found": len(statuses),
            **{status: statuses.count(status) for status in ("replaced", "kept", "refused")},
        }

    @property
    def refused(self):
        return [site for site in self.sites if site.status == "refused"]

    @property
    def max_fit_error(self):
        """The largest per-site fit error (None if no site was fitted)."""
        errors = [site.fit_error for site in self.sites if site.fit_error is not None]
        return max(errors) if errors else None

    def to_dict(self):
        return dataclasses.asdict(self)

    def __str__(self):
        counts = self.counts()
        lines = [
            f"convert({self.model!r}, {self.method!r}, padding={self.padding!r}): "
            f"{counts['found']} sites found, {counts['replaced']} replaced, "
            f"{counts['kept']} kept, {counts['refused']} refused; "
            f"{self.paddings_made_circular} paddings made circular",
        ]
        calibrated = any(site.calibration_error is not None for site in self.sites)
        header = ("site", "layer", "kernel", "stride", "status", "replacement", "fit error")
        header += ("calib. error (white-noise fit -> refit)",) if calibrated else ()
        header += ("phase / reason",)
        rows = [
            (
                site.path,
                site.layer,
                "x".join(str(k) for k in site.kernel),
                str(site.stride),
                site.status,
                site.replacement,
                "-" if site.fit_error is None else f"{site.fit_error:.2e}",
            )
            + ((_calibration_cell(site),) if calibrated else ())
            + ("; ".join(part for part in (site.phase, site.reason) if part),)
            for site in self.sites
        ]
        widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
        for row in [header] + rows:
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        lines.extend(f"note: {note}" for note in self.notes)
        if self.circular_invariant is not None:
            lines.append(f"circular_invariant: {self.circular_invariant}")
            lines.extend(f"  not invariant: {line}" for line in self.invariance_breaks)
        return "\n".join(lines)


def _calibration_cell(site):
    if site.calibration_error is None:
        return "-"
    return f"{site.calibration_error_before:.2e} -> {site.calibration_error:.2e}"
