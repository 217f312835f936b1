"""Figures, made from the CSVs of one results folder only (matplotlib, Agg backend):
results/reference for the committed figures (`make figures`), results/ for a
checkout's own runs (`make reproduce`).

Each figure function reads the CSVs it needs, skips quietly when one is
missing, and returns the PNG it wrote. ``make_figures`` also writes
``claims.csv``: the numbers behind each of the reference paper's claims.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from feasibility.core.files import write_atomic, write_csv_atomic
from feasibility.science import analysis

COLORS = {"coupled": "tab:blue", "decoupled": "tab:orange", "hebbian": "tab:green",
          "optimal": "tab:red"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    try:
        return write_atomic(path, lambda handle: fig.savefig(handle, format="png", dpi=110,
                                                             bbox_inches="tight"))
    finally:
        _plt().close(fig)


def _read(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.exists() and path.stat().st_size > 0 else None


# -- claim 1 and 2: capacity -----------------------------------------------------------
def fig_models(results: Path) -> Path | None:
    capacity = analysis.read_capacity(results)
    if capacity.empty:
        return None
    ratios = analysis.ratio_table(capacity)
    paired = analysis.models_comparison(capacity)
    plt = _plt()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    for model, g in ratios.groupby("model"):
        ax.errorbar(g["d"], g["p_c"], yerr=[g["p_c"] - g["q25"], g["q75"] - g["p_c"]],
                    marker="o", capsize=3, color=COLORS.get(model), label=model)
    ax.set(xlabel="dimension d",
           ylabel="capacity p_c (facts; median over seeds, bars: IQR)",
           title="Coupled and decoupled capacity")
    ax.legend()
    if not paired.empty:
        bx.errorbar(paired["d"], paired["mean_ratio"],
                    yerr=[paired["mean_ratio"] - paired["ratio_ci_low"],
                          paired["ratio_ci_high"] - paired["mean_ratio"]],
                    marker="s", capsize=3, color="k", label="mean over seeds, 95% bootstrap CI")
        bx.axhline(1.0, color="grey", ls="--", lw=1, label="equal capacity")
        bx.set_xlabel("dimension d")
        bx.set_ylabel("p*(decoupled) / p*(coupled), same seed (ratio)")
        for _, r in paired.iterrows():
            bx.annotate(f"{int(r['seeds'])} seeds", (r["d"], r["ratio_ci_high"]),
                        textcoords="offset points", xytext=(0, 4), ha="center", fontsize=7)
        bx.set_title("Paired by seed (shared inputs and targets)")
        bx.legend(fontsize=8)
    return _save(fig, results / "capacity-models.png")


def fig_theory(results: Path) -> Path | None:
    capacity = analysis.read_capacity(results)
    if capacity.empty:
        return None
    ratios = analysis.ratio_table(capacity)
    theory = _read(results / "theory.csv")
    plt = _plt()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    for model, g in ratios.groupby("model"):
        ax.errorbar(g["d"], g["p_c"], yerr=[g["p_c"] - g["q25"], g["q75"] - g["p_c"]],
                    marker="o", ls="none", capsize=3, color=COLORS.get(model),
                    label=f"measured p_c, {model}")
        bx.errorbar(g["d"], g["ratio"], yerr=2 * g["ratio_se"].fillna(0), marker="o",
                    ls="none", capsize=3, color=COLORS.get(model),
                    label=f"measured, {model} (±2 s.e.)")
    d_max = ratios["d"].max()
    if theory is not None:
        t = theory[theory["d"] <= max(4 * d_max, 32)]
        ax.plot(t["d"], t["p_asymptote"], "k-", label="asymptote p ln p = d²/2")
        ax.plot(t["d"], t["p_extreme_value"], "k--",
                label=r"extreme-value heuristic $p\,E[M_{p-1}^2] = d^2$ (M: max of normals)")
        bx.plot(t["d"], t["ratio_extreme_value"], "k--", label="extreme-value heuristic")
    bx.axhline(0.5, color="k", lw=1, label="limit 1/2")
    grid = np.linspace(ratios["d"].min(), 4 * d_max, 200)
    for model, g in ratios.groupby("model"):
        fit = analysis.extrapolate(g, "1/log d")
        if math.isfinite(fit["r_inf"]):
            bx.plot(grid, fit["r_inf"] + fit["slope"] / np.log(grid), ":",
                    color=COLORS.get(model),
                    label=f"fit r∞ + b/ln d, {model}: r∞ = {fit['r_inf']:.2f} ± "
                          f"{fit['r_inf_se']:.2f}")
    ax.set(xscale="log",
           yscale="log",
           xlabel="dimension d",
           ylabel="capacity p_c (facts)",
           title="Capacity against theory")
    ax.legend(fontsize=7)
    bx.set(xscale="log",
           xlabel="dimension d",
           ylabel="p_c ln p_c / d² (dimensionless)",
           title="Finite-size approach to 1/2")
    bx.legend(fontsize=7)
    return _save(fig, results / "capacity-theory.png")


# -- claim 3: spectra ------------------------------------------------------------------
def fig_spectra(results: Path) -> Path | None:
    spectra = _read(results / "spectra.csv")
    if spectra is None:
        return None
    spectra = spectra.dropna(subset=["sigma"])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for memory, g in spectra.groupby("memory"):
        d = g["d"].iloc[0]
        stats = g.groupby("k")["sigma"].agg(["mean", "min", "max"])
        x = stats.index.to_numpy() / d
        label = {"hebbian": "Hebbian W_H"}.get(memory, f"optimal W, {memory}")
        ax.plot(x, stats["mean"], marker=".", color=COLORS.get(memory), label=label)
        ax.fill_between(x, stats["min"], stats["max"], color=COLORS.get(memory), alpha=0.2)
    first = spectra.iloc[0]
    seeds = spectra["seed"].nunique()
    d = int(first["d"])
    ax.plot((np.arange(1, d + 1)) / d, quarter_circle_quantiles(d), "k:", lw=1.2,
            label="quarter-circle law (i.i.d. Gaussian d x d matrix)")
    ax.set_xlabel("rank k / d")
    ax.set_ylabel("singular value σ_k (units: Σσ² = d)")
    ax.set_title(f"Spectra of the learnt weights (d = {first['d']}, p = {first['p']}, "
                 f"{seeds} seeds; band: min-max)", fontsize=9)
    ax.legend()
    return _save(fig, results / "spectra.png")


def quarter_circle_quantiles(d: int) -> np.ndarray:
    """Expected k-th largest singular value of a d x d i.i.d. Gaussian matrix
    (scaled to mean square 1): the quantile 1 - (k - 1/2)/d of the quarter-circle
    density sqrt(4 - s^2)/pi on [0, 2]."""
    s = np.linspace(0.0, 2.0, 4001)
    cdf = (s * np.sqrt(4 - s**2) / 2 + 2 * np.arcsin(s / 2)) / np.pi
    return np.interp(1 - (np.arange(1, d + 1) - 0.5) / d, cdf, s)


# -- claim 4: Hebbian baseline and storage mechanism -------------------------------------
def fig_hebbian(results: Path) -> Path | None:
    hebbian = _read(results / "hebbian.csv")
    if hebbian is None:
        return None
    summary = analysis.hebbian_summary(hebbian)
    capacity = analysis.read_capacity(results)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    for model, g in summary.groupby("model"):
        ax.errorbar(g["d"], g["p_hebbian"], yerr=[g["p_hebbian"] - g["q25"],
                                                  g["q75"] - g["p_hebbian"]],
                    marker="^", capsize=3, ls="-", color=COLORS.get(model),
                    label=f"Hebbian W_H, {model}")
    if not capacity.empty:
        ratios = analysis.ratio_table(capacity)
        for model, g in ratios.groupby("model"):
            ax.plot(g["d"], g["p_c"], marker="o", ls=":", color=COLORS.get(model),
                    label=f"optimal W, {model}")
    d = np.geomspace(summary["d"].min(), summary["d"].max(), 100)
    ax.plot(d, [analysis.asymptote_p(x) for x in d], "k-", lw=1,
            label="optimal asymptote p ln p = d²/2")
    ax.plot(d, [analysis.hebbian_estimate(x) for x in d], "k--", lw=1,
            label="Hebbian estimate p ln p = d²/8 (heuristic)")
    ax.set(xscale="log",
           yscale="log",
           xlabel="dimension d",
           ylabel="largest p stored (facts; median, bars: IQR)",
           title="Hebbian rule against the optimal memory")
    ax.legend(fontsize=7)
    return _save(fig, results / "hebbian.png")


def fig_mechanism(results: Path) -> Path | None:
    mech = _read(results / "mechanism.csv")
    if mech is None:
        return None
    plt = _plt()
    models = list(dict.fromkeys(mech["model"]))
    fig, axes = plt.subplots(2, len(models), figsize=(5.5 * len(models), 7.5), squeeze=False)
    for col, model in enumerate(models):
        g_model = mech[mech["model"] == model]
        ax, bx = axes[0, col], axes[1, col]
        expected = None
        for memory, g in g_model.groupby("memory", sort=False):
            z_c = (g["correct"] - g["competitor_mean"]) / g["competitor_std"]
            z_m = (g["max_competitor"] - g["competitor_mean"]) / g["competitor_std"]
            bins = np.linspace(min(z_c.min(), z_m.min()) - 0.2,
                               max(z_c.max(), z_m.max()) + 0.2, 40)
            ax.hist(z_c, bins=bins, color=COLORS[memory], alpha=0.55,
                    label=f"correct score, {memory}")
            ax.hist(z_m, bins=bins, color=COLORS[memory], histtype="step", lw=1.5,
                    label=f"largest competitor, {memory}")
            expected = ((g["threshold"] - g["competitor_mean"]) / g["competitor_std"]).mean()
            bx.scatter(g["max_competitor"], g["correct"], s=10, color=COLORS[memory],
                       alpha=0.7, label=f"{memory} ({(g['margin'] > 0).mean():.0%} separated)")
        if expected is not None:
            ax.axvline(expected, color="k", ls="--",
                       label=f"extreme-value threshold E[max of n normals] = {expected:.2f}")
        lo = min(g_model["max_competitor"].min(), g_model["correct"].min())
        hi = max(g_model["max_competitor"].max(), g_model["correct"].max())
        bx.plot([lo, hi], [lo, hi], "k-", lw=1, label="correct = largest competitor")
        first = g_model.iloc[0]
        ax.set_title(f"{model} model, d = {first['d']}, p = {first['p']}, seed {first['seed']}",
                     fontsize=10)
        ax.set_xlabel("(score - competitor mean) / competitor s.d. (standard units)")
        ax.set_ylabel("facts (count)")
        ax.legend(fontsize=7)
        bx.set_xlabel("largest competitor score (W scaled to ||W_H||_F)")
        bx.set_ylabel("correct score (same units)")
        bx.legend(fontsize=7)
    return _save(fig, results / "mechanism.png")


# -- claim 5: two-layer ------------------------------------------------------------------
def fig_twolayer(results: Path) -> Path | None:
    frame = _read(results / "twolayer.csv")
    if frame is None:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    for model, g in frame.groupby("model"):
        stats = g.groupby("h_over_d").agg(frozen=("p_frozen", "median"),
                                          trained=("p_trained", "median"),
                                          full=("p_full", "median"),
                                          fq25=("p_frozen", lambda s: s.quantile(0.25)),
                                          fq75=("p_frozen", lambda s: s.quantile(0.75)))
        x = stats.index.to_numpy()
        ax.errorbar(x, stats["frozen"], yerr=[stats["frozen"] - stats["fq25"],
                                              stats["fq75"] - stats["frozen"]],
                    marker="o", capsize=3, color=COLORS.get(model),
                    label=f"A frozen at random (certified), {model}")
        ax.plot(x, stats["trained"], marker="s", ls="--", color=COLORS.get(model),
                label=f"A and B trained (certified lower bound), {model}")
        ax.plot(x, stats["full"], ls=":", color="grey",
                label="one layer d x d (certified; upper bound for any B A)")
        d = g["d"].iloc[0]
        full = float(stats["full"].iloc[-1])
        r = full * math.log(full) / d**2
        h = np.linspace(max(x.min(), 1 / d), max(x.max(), 1.0), 100)

        def solve(dof):
            return brentq(lambda p: p * math.log(p) - r * dof, 1.0 + 1e-9, 1e6)

        ax.plot(h, [solve(d * d * min(t, 1.0)) for t in h], color="k", lw=0.8, alpha=0.6,
                label="p ln p ∝ d·h (frozen: parameters of B), heuristic")
        ax.plot(h, [solve(d * d * min(t, 1.0) * (2 - min(t, 1.0))) for t in h], color="k",
                lw=0.8, ls="-.", alpha=0.6,
                label="p ln p ∝ h(2d − h) (rank-h matrices), heuristic")
    ax.set(xlabel="hidden width / input dimension, h / d (ratio)",
           ylabel="capacity p (facts; median over seeds)",
           title=f"Two-layer linear memories W = B A (d = {frame['d'].iloc[0]})")
    ax.legend(fontsize=7)
    return _save(fig, results / "twolayer.png")


# -- top-k retrieval ---------------------------------------------------------------------
def fig_topk(results: Path) -> Path | None:
    frame = _read(results / "topk.csv")
    if frame is None:
        return None
    table = topk_table(frame)
    plt = _plt()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    for criterion, g in table.groupby("criterion", sort=False):
        ax.errorbar(g["d"], g["p_c"], yerr=[g["p_c"] - g["q25"], g["q75"] - g["p_c"]],
                    marker="o", capsize=3, label=criterion)
        line, = bx.plot(g["d"], g["p_over_d2"], marker="o", label=f"{criterion}: p_c / d²")
        bx.plot(g["d"], g["p_log_p_over_d2"], marker="s", ls="--", color=line.get_color(),
                label=f"{criterion}: p_c ln p_c / d²")
    ax.set(xscale="log",
           yscale="log",
           xlabel="dimension d",
           ylabel="capacity p_c (facts; median, bars: IQR)",
           title="Top-1 against tail-average-margin retrieval")
    ax.legend(fontsize=8)
    bx.set(xlabel="dimension d",
           ylabel="scaling ratio (dimensionless)",
           title="Flat in d: the scaling law that fits")
    bx.legend(fontsize=7)
    return _save(fig, results / "topk.png")


def topk_table(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    exact = frame[frame["status"] == "exact"]
    for (criterion, d), g in exact.groupby(["criterion", "d"], sort=False):
        p = g["p_star"].astype(float)
        med = float(p.median())
        rows.append({"criterion": criterion, "d": int(d), "seeds": len(p), "p_c": med,
                     "q25": float(p.quantile(0.25)), "q75": float(p.quantile(0.75)),
                     "p_over_d2": med / d**2, "p_log_p_over_d2": med * math.log(med) / d**2})
    return pd.DataFrame(rows).sort_values(["criterion", "d"], kind="stable")


def local_exponent(table: pd.DataFrame) -> pd.DataFrame:
    """Slope of ln p_c against ln d per criterion (2 for p ~ d^2; below 2, and
    falling towards 2/(1 + 1/ln p), for p ln p ~ d^2)."""
    rows = []
    for criterion, g in table.groupby("criterion", sort=False):
        if len(g) >= 2:
            slope = np.polyfit(np.log(g["d"]), np.log(g["p_c"]), 1)[0]
            rows.append({"criterion": criterion, "exponent": float(slope),
                         "d_range": f"{g['d'].min()}-{g['d'].max()}"})
    return pd.DataFrame(rows)


# -- all of them, and the numbers ------------------------------------------------------------
FIGURES = (fig_models, fig_theory, fig_spectra, fig_hebbian, fig_mechanism, fig_twolayer,
           fig_topk)


def claims_table(results: Path) -> pd.DataFrame:
    """One row per number quoted for a claim: claim, quantity, value, detail."""
    rows = []

    def add(claim, quantity, value, detail=""):
        rows.append({"claim": claim, "quantity": quantity, "value": value, "detail": detail})

    capacity = analysis.read_capacity(results)
    if not capacity.empty:
        for _, r in analysis.models_comparison(capacity).iterrows():
            add(1, f"p*(decoupled)/p*(coupled), d={int(r['d'])}", round(r["mean_ratio"], 4),
                f"95% CI [{r['ratio_ci_low']:.3f}, {r['ratio_ci_high']:.3f}], {int(r['seeds'])} "
                f"seeds, p_c {r['p_c_coupled']:g} vs {r['p_c_decoupled']:g}, decoupled lower "
                f"on {int(r['seeds_decoupled_lower'])}, equal on {int(r['seeds_equal'])}")
        ratios = analysis.ratio_table(capacity)
        for _, r in ratios.iterrows():
            add(2, f"p_c ln p_c / d^2, {r['model']}, d={r['d']}", round(r["ratio"], 4),
                f"p_c = {r['p_c']:g} (median of {r['seeds']}), s.e. {r['ratio_se']:.3f}"
                + (f" (per-seed spread at d={r['se_from']})" if r["se_from"] != r["d"] else ""))
        for _, r in analysis.boundary_table(capacity).iterrows():
            add(2, f"fraction of p* unchanged at tau/100, {r['model']}, d={r['d']}",
                round(r["unchanged"] / r["checked"], 4),
                f"{r['unchanged']} of {r['checked']} rows checked: p* + 1 decided again at "
                f"{r['boundary_over_tau']:g} tau; certified kappa* there <= "
                f"{r['largest_bound_over_tau']:.2g} tau at worst")
        for model, g in ratios.groupby("model"):
            for _, fit in analysis.compare_fits(g).iterrows():
                add(2, f"extrapolated limit r_inf ({fit['form']}), {model}",
                    round(fit["r_inf"], 4),
                    f"± {fit['r_inf_se']:.3f} (1 s.e.), {fit['points']} values of d "
                    f"{g['d'].min()}-{g['d'].max()}; chi2 {fit['chi2']:.2f}, AIC "
                    f"{fit['aic']:.2f}; d = {fit['held_out_d']} held out: predicted "
                    f"{fit['held_out_predicted']:.3f}, off by {fit['held_out_miss_se']:+.1f} s.e.")
    spectra = _read(results / "spectra.csv")
    if spectra is not None:
        for _, r in analysis.spectra_agreement(spectra).iterrows():
            add(3, f"mean |sigma_k - sigma'_k|, d={int(r['d'])}, p={int(r['p'])}",
                round(r["coupled_vs_decoupled"], 4),
                f"coupled vs decoupled (same seed); seed vs seed {r['seed_vs_seed']:.4f}; "
                f"optimal vs Hebbian {r['optimal_vs_hebbian']:.4f}; {int(r['seeds'])} seeds")
    hebbian = _read(results / "hebbian.csv")
    if hebbian is not None:
        summary = analysis.hebbian_summary(hebbian)
        for _, r in summary.iterrows():
            add(4, f"Hebbian p_H, {r['model']}, d={r['d']}", r["p_hebbian"],
                f"IQR [{r['q25']:g}, {r['q75']:g}], p ln p/d^2 = {r['p_log_p_over_d2']:.3f}, "
                f"{r['exact']}/{r['seeds']} seeds, non-monotone seeds "
                f"{r['non_monotone_seeds']}")
        if not capacity.empty:
            both = hebbian.merge(capacity, on=["model", "d", "seed"])
            both = both[(both["status_x"] == "exact") & (both["status_y"] == "exact")]
            for (model, d), g in both.groupby(["model", "d"]):
                add(4, f"p_H / p* (same seeds), {model}, d={d}",
                    round(float((g["p_hebbian"] / g["p_star"]).mean()), 4),
                    f"{len(g)} seeds; p_H <= p* on {(g['p_hebbian'] <= g['p_star']).sum()}")
    mech = _read(results / "mechanism.csv")
    if mech is not None:
        for _, r in analysis.mechanism_summary(mech).iterrows():
            add(4, f"mechanism {r['memory']}, {r['model']}: separated fraction",
                round(r["separated"], 4),
                f"correct mean {r['correct_mean']:.3f} (cv {r['correct_cv']:.2f}); margin "
                f"{r['margin_mean']:.3f} ± {r['margin_std']:.3f}; correct at "
                f"{r['z_correct_mean']:.2f} ± {r['z_correct_std']:.2f} s.d., largest "
                f"competitor at {r['z_max_competitor_mean']:.2f} s.d.; above the "
                f"extreme-value threshold: {r['above_threshold']:.0%}")
    two = _read(results / "twolayer.csv")
    if two is not None:
        for (model, h), g in two.groupby(["model", "h"]):
            add(5, f"two-layer {model}, d={g['d'].iloc[0]}, h={h}: p_frozen / p_full",
                round(float((g["p_frozen"] / g["p_full"]).median()), 4),
                f"p_frozen {g['p_frozen'].median():g}, p_trained >= "
                f"{g['p_trained'].median():g}, p_full {g['p_full'].median():g} "
                f"(medians of {len(g)} seeds)")
    topk = _read(results / "topk.csv")
    if topk is not None:
        table = topk_table(topk)
        for _, r in local_exponent(table).iterrows():
            add("top-k", f"exponent of p_c in d, {r['criterion']}", round(r["exponent"], 3),
                f"fit of ln p_c on ln d over d = {r['d_range']}")
    return pd.DataFrame(rows, columns=["claim", "quantity", "value", "detail"])


def make_figures(results) -> list[Path]:
    results = Path(results)
    written = [path for figure in FIGURES if (path := figure(results)) is not None]
    claims = claims_table(results)
    if not claims.empty:

        write_csv_atomic(claims, results / "claims.csv")
        written.append(results / "claims.csv")
    return written
