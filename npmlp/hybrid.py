"""Synthetic calling-score data from Big Five profiles, with a known noise floor.

`npmlp data hybrid --out data/hybrid_big_five.csv [--samples N] [--seed S] [--big-five FILE]`
writes the CSV (the 39 app features, then calling_score, every value '%.6f' in [0, 1]) and a
sidecar JSON at the same stem. It does not train or load data sets for training (data.py).

How row i is made, every draw from its own named seeded stream:
1. Traits t = (O, C, E, A, N) in [0, 1]: from a respondent of --big-five FILE (respondents in a
   seeded shuffled order, cycled when fewer than the rows) or, without a file, drawn from the
   built-in population (POP_MEAN, POP_SD, POP_CORR).
2. User vibes u = sigmoid(a), a = VIBE_WEIGHTS @ z + 0.6 e: z the traits standardized by the
   built-in population, e ~ N(0, I) what the traits do not explain.
3. Spot vibes s = sigmoid(0.5 a + e'), e' ~ N(0, I): spots a user meets lean to the user's taste.
4. Context: vibe_compatibility = 1 - mean |u - s|; energy_match, community_match, novelty_match
   = 1 - |u_d - s_d| for their dimension; user_receptivity, network_effects, community_patterns
   lean on a vibe (exploration, trust network, the spot's community); location_proximity,
   journey_alignment, opportunity_availability independent Beta draws.
   Timing: user_patterns leans against temporal flexibility; timing_alignment =
   1 - |user_patterns - opportunity_timing|; the rest independent Beta draws.
5. calling_score y ~ Beta(K mu, K (1 - mu)), K = CONCENTRATION, mu = sigmoid(eta(x)) with
   eta in `true_mean`: vibe compatibility, proximity x journey, receptivity x availability,
   timing x time of day, network effects x trust, user x spot novelty, and a penalty for a
   spot more crowded than the user tolerates. Then E[y | x] = mu and
   Var[y | x] = mu (1 - mu) / (K + 1) exactly, and y stays in [0, 1] with no clipping.

Every feature is rounded to 6 decimals before anything is computed from it, so mu is the exact
conditional mean of the written target given the written features. The noise floor, the MSE of
that best possible predictor, is recorded in the sidecar: expected (mean conditional variance)
and realized (MSE of mu on the written y), over all rows and per split (train.split_rows, seed 42).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import Config
from .data import CONTEXT, FEATURES, SIDECAR_KIND, TARGET, TIMING, VIBES
from .files import InputError, atomic_write, sha256_file, write_json
from .train import MIN_ROWS, split_rows

GENERATOR_VERSION = 1  # bump when a change alters the rows generated for the same arguments
DIGITS = 6  # decimals written, and the precision everything is computed from
CONCENTRATION = 30.0  # K of the Beta outcome: larger K, smaller noise

TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")

# Built-in population: scale-score statistics of the `bfi` data set published with W. Revelle's
# R package psych (25 IPIP items from the SAPA web project, sapa-project.org, spring 2010), over
# the 2,436 of its 2,800 respondents who answered all 25 items; items 1-6, reverse-keyed ones
# reversed, scale score = item mean; rounded to 2 decimals (tests recompute them from the file).
# Order O, C, E, A, N.
#   means 4.61 4.27 4.13 4.64 3.17; SDs 0.80 0.96 1.07 0.91 1.20;
#   correlations O-C .19, O-E .22, O-A .14, O-N -.08, C-E .27, C-A .26, C-N -.23, E-A .47,
#   E-N -.23, A-N -.19.
# Mapped to [0, 1] as (score - 1) / 5; the SAPA scale is 1-6.
POP_MEAN = (np.array([4.61, 4.27, 4.13, 4.64, 3.17]) - 1) / 5
POP_SD = np.array([0.80, 0.96, 1.07, 0.91, 1.20]) / 5
POP_CORR = np.array([
    [1.00, 0.19, 0.22, 0.14, -0.08],
    [0.19, 1.00, 0.27, 0.26, -0.23],
    [0.22, 0.27, 1.00, 0.47, -0.23],
    [0.14, 0.26, 0.47, 1.00, -0.19],
    [-0.08, -0.23, -0.23, -0.19, 1.00],
])  # fmt: skip

# Which trait drives which user vibe, with weight and sign, on standardized traits.
#                    O     C     E     A     N
VIBE_WEIGHTS = np.array([
    [0.8, 0.0, 0.4, 0.0, 0.0],  # exploration_eagerness: curious and outgoing
    [0.0, 0.0, 0.5, 0.7, 0.0],  # community_orientation: warm and sociable
    [0.6, 0.2, 0.0, 0.3, 0.0],  # authenticity_preference
    [0.0, 0.0, 0.9, 0.2, 0.0],  # social_discovery_style: finds places through people
    [0.3, -0.7, 0.0, 0.0, 0.0],  # temporal_flexibility: the unplanned
    [0.6, 0.0, 0.4, 0.0, -0.3],  # location_adventurousness
    [0.3, 0.7, 0.0, 0.0, 0.0],  # curation_tendency: the organized connoisseur
    [-0.3, 0.0, 0.0, 0.5, 0.3],  # trust_network_reliance: goes where friends vouch
    [0.0, 0.0, 0.8, 0.0, -0.3],  # energy_preference
    [0.8, -0.2, 0.3, 0.0, 0.0],  # novelty_seeking
    [0.0, 0.6, 0.0, 0.2, 0.2],  # value_orientation: careful with money
    [0.0, 0.0, 0.7, 0.0, -0.5],  # crowd_tolerance
])  # fmt: skip
IDIOSYNCRASY_SD = 0.6  # of the user-vibe logit beyond the traits
SPOT_PULL, SPOT_SD = 0.5, 1.0  # spot logit = SPOT_PULL * user logit + N(0, SPOT_SD^2)

STREAMS = ("population", "order", "vibes", "spots", "context", "timing", "outcome")


def stream(seed: int, name: str) -> np.random.Generator:
    """Named, independent streams of one seed (keyed apart from train.stream's)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x68, STREAMS.index(name))))


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _fixed(a) -> np.ndarray:
    """Values exactly as written and read back: '%.6f' text parsed again."""
    a = np.asarray(a, dtype=np.float64)
    return np.array([f"{v:.{DIGITS}f}" for v in a.ravel().tolist()], dtype=np.float64).reshape(a.shape)


# --- the target ----------------------------------------------------------------------------


def true_mean(X) -> np.ndarray:
    """mu = E[calling_score | x] for X (n, 39) in FEATURES order: the best possible predictor."""
    f = dict(zip(FEATURES, np.asarray(X, dtype=np.float64).T))
    # Weights tuned so that on the default set a linear fit's test MSE is about twice the floor
    # while the baseline MLP gets within about a quarter of it.
    eta = (
        -1.8
        + 6.0 * (f["vibe_compatibility"] - 0.72)
        + 3.0 * (f["location_proximity"] - 0.4) * (0.4 + f["journey_alignment"])  # near, and on the way
        + 3.5 * f["user_receptivity"] * f["opportunity_availability"]  # both needed
        + 2.0 * (f["timing_alignment"] - 0.6) * (0.3 + f["optimal_time_of_day"])
        + 2.5 * (f["network_effects"] - 0.5) * f["user_trust_network_reliance"]  # counts for the trusting
        + 6.0 * (f["user_novelty_seeking"] - 0.5) * (f["spot_novelty_seeking"] - 0.5)  # new for the curious only
        - 5.0 * np.maximum(0.0, f["spot_crowd_tolerance"] - f["user_crowd_tolerance"]) ** 2  # too crowded
    )
    return _sigmoid(eta)


def conditional_variance(mu) -> np.ndarray:
    """Var[calling_score | x] of the Beta(K mu, K (1 - mu)) outcome."""
    return mu * (1.0 - mu) / (CONCENTRATION + 1.0)


def draw_outcome(mu, rng: np.random.Generator) -> np.ndarray:
    k = CONCENTRATION
    return rng.beta(k * mu, k * (1.0 - mu))


# --- features ------------------------------------------------------------------------------


def make_features(traits, seed: int) -> np.ndarray:
    """(n, 5) traits in [0, 1] -> X (n, 39) in FEATURES order, rounded to DIGITS."""
    n = len(traits)
    z = (np.asarray(traits) - POP_MEAN) / POP_SD  # (n, 5)
    a_user = z @ VIBE_WEIGHTS.T + IDIOSYNCRASY_SD * stream(seed, "vibes").standard_normal((n, len(VIBES)))
    a_spot = SPOT_PULL * a_user + SPOT_SD * stream(seed, "spots").standard_normal((n, len(VIBES)))
    u, s = _fixed(_sigmoid(a_user)), _fixed(_sigmoid(a_spot))  # (n, 12) each
    context = _context(u, s, a_user, a_spot, stream(seed, "context"))
    timing = _timing(a_user, stream(seed, "timing"))
    return np.hstack([u, s, context, timing])


def _context(u, s, a_user, a_spot, rng) -> np.ndarray:
    n, v = len(u), VIBES.index

    def lean(a):  # a [0, 1] score pulled by a vibe logit
        return _fixed(_sigmoid(0.7 * a + rng.standard_normal(n)))

    def match(d):
        return _fixed(1.0 - np.abs(u[:, v(d)] - s[:, v(d)]))

    columns = {
        "location_proximity": _fixed(rng.beta(2.0, 1.5, n)),
        "journey_alignment": _fixed(rng.beta(2.0, 2.0, n)),
        "user_receptivity": lean(a_user[:, v("exploration_eagerness")]),
        "opportunity_availability": _fixed(rng.beta(3.0, 2.0, n)),
        "network_effects": lean(a_user[:, v("trust_network_reliance")]),
        "community_patterns": lean(a_spot[:, v("community_orientation")]),
        "vibe_compatibility": _fixed(1.0 - np.abs(u - s).mean(axis=1)),
        "energy_match": match("energy_preference"),
        "community_match": match("community_orientation"),
        "novelty_match": match("novelty_seeking"),
    }
    return np.column_stack([columns[name] for name in CONTEXT])


def _timing(a_user, rng) -> np.ndarray:
    n = len(a_user)
    flexibility = a_user[:, VIBES.index("temporal_flexibility")]
    patterns = _fixed(_sigmoid(-0.7 * flexibility + rng.standard_normal(n)))  # routines
    opportunity = _fixed(rng.beta(2.0, 2.0, n))
    columns = {
        "optimal_time_of_day": _fixed(rng.beta(2.0, 2.0, n)),
        "optimal_day_of_week": _fixed(rng.beta(2.0, 2.0, n)),
        "user_patterns": patterns,
        "opportunity_timing": opportunity,
        "timing_alignment": _fixed(1.0 - np.abs(patterns - opportunity)),
    }
    return np.column_stack([columns[name] for name in TIMING])


# --- Big Five profiles ---------------------------------------------------------------------

# The 50-item IPIP Big-Five factor markers (Goldberg 1992; ipip.ori.org), numbered within each
# trait as in the Open Psychometrics codebook (EXT1..OPN10, or E1..O10 in its older data): the
# reverse-keyed items, scored 6 - x on the 1-5 scale. The EST/N items are keyed toward
# neuroticism ("I get stressed out easily"), so only 2 and 4 are reversed there.
IPIP50_REVERSED = {
    "openness": (2, 4, 6),  # difficulty understanding abstract ideas; not interested in abstract
    #   ideas; do not have a good imagination
    "conscientiousness": (2, 4, 6, 8),  # leave my belongings around; make a mess of things;
    #   often forget to put things back; shirk my duties
    "extraversion": (2, 4, 6, 8, 10),  # don't talk a lot; keep in the background; have little to
    #   say; don't like to draw attention to myself; am quiet around strangers
    "agreeableness": (1, 3, 5, 7),  # feel little concern for others; insult people; am not
    #   interested in other people's problems; am not really interested in others
    "neuroticism": (2, 4),  # am relaxed most of the time; seldom feel blue
}
# The SAPA 25 IPIP items of the psych package's bfi data (A1..O5, answers 1-6): the reverse-keyed
# items of its bfi.keys, scored 7 - x.
SAPA25_REVERSED = frozenset({"A1", "C4", "C5", "E1", "E2", "O2", "O5"})
MISSING_TEXTS = frozenset({"", "NA", "NULL"})  # cells that mean "not answered" in any format
DROP_RULE = "dropped when more than half of any one trait's items are unanswered"
CHUNK = 65536  # rows converted at a time: a million-row file need not sit in memory as text


@dataclass(frozen=True)
class Instrument:
    name: str
    items: dict  # trait -> its columns, TRAITS order
    reversed: frozenset  # reverse-keyed columns, scored low + high - x
    low: float  # the answer scale
    high: float
    whole: bool  # answers are whole numbers (Likert items)
    zero_missing: bool  # 0 codes "not answered" (Open Psychometrics)
    claims: frozenset  # columns whose presence means this format

    @property
    def columns(self) -> list:
        return [c for t in TRAITS for c in self.items[t]]


def _ipip50(name: str, prefix: dict, claim_from: int) -> Instrument:
    items = {t: tuple(f"{prefix[t]}{k}" for k in range(1, 11)) for t in TRAITS}
    rev = frozenset(f"{prefix[t]}{k}" for t in TRAITS for k in IPIP50_REVERSED[t])
    claims = frozenset(c for t in TRAITS for c in items[t][claim_from - 1 :])
    return Instrument(name, items, rev, 1, 5, True, True, claims)


_SAPA_ITEMS = {t: tuple(f"{t[0].upper()}{k}" for k in range(1, 6)) for t in TRAITS}
# Checked in this order; the first whose claim columns appear must then be complete. E1..E5
# alone is SAPA-25; E6..E10 (and the like) mean the IPIP-50 letter naming.
INSTRUMENTS = (
    _ipip50("ipip50", dict(zip(TRAITS, ("OPN", "CSN", "EXT", "AGR", "EST"))), 1),
    _ipip50("ipip50-letters", dict(zip(TRAITS, "OCEAN")), 6),
    Instrument("sapa25", _SAPA_ITEMS, SAPA25_REVERSED, 1, 6, True, False, frozenset(sum(_SAPA_ITEMS.values(), ()))),
    Instrument("trait-scores", {t: (t,) for t in TRAITS}, frozenset(), 1, 5, False, False, frozenset(TRAITS)),
)


@dataclass(frozen=True)
class Profiles:
    traits: np.ndarray  # (m, 5) in [0, 1], TRAITS order, usable respondents only
    instrument: str
    read: int  # respondents (data rows) in the file
    dropped: int  # by DROP_RULE


def read_big_five(path) -> Profiles:
    """Score a Big Five file: item mean per trait over the answered items, mapped to [0, 1] by
    the answer scale. Tab- or comma-separated (tab when the header has one)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            first = f.readline()
            if not first.strip():
                raise InputError(f"{path}: empty file")
            delimiter = "\t" if "\t" in first else ","
            header = [h.strip() for h in next(csv.reader([first], delimiter=delimiter))]
            inst = _instrument(path, header)
            blocks = list(_answer_blocks(path, csv.reader(f, delimiter=delimiter), header, inst))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason})")
    if not blocks:
        raise InputError(f"{path}: no data rows (header only)")
    traits, keep = score(inst, np.concatenate(blocks))
    if not keep.any():
        raise InputError(f"{path}: no usable respondent ({DROP_RULE})")
    return Profiles(traits[keep], inst.name, len(keep), int((~keep).sum()))


def _instrument(path, header) -> Instrument:
    present = set(header)
    for inst in INSTRUMENTS:
        if inst.claims & present:
            missing = [c for c in inst.columns if c not in present]
            if missing:
                raise InputError(f"{path}: looks like {inst.name} but lacks column(s) {', '.join(missing)}")
            return inst
    raise InputError(
        f"{path}: not a known Big Five file: expected IPIP-50 items (EXT1..OPN10 or E1..O10), "
        f"SAPA-25 items (A1..O5) or trait scores ({', '.join(TRAITS)})"
    )


def _answer_blocks(path, reader, header, inst):
    """(rows, items) float arrays of answers, NaN where unanswered, CHUNK rows at a time."""
    cols = [header.index(c) for c in inst.columns]
    cells, lines, rows = [], [], 0
    try:
        for fields in reader:
            if not fields:
                continue
            rows += 1
            if len(fields) != len(header):
                raise InputError(
                    f"{path}: row {rows} (line {reader.line_num + 1}): {len(fields)} fields, "
                    f"the header has {len(header)}"
                )
            cells.append([fields[j] for j in cols])
            lines.append(reader.line_num + 1)
            if len(cells) == CHUNK:
                yield _answers(path, inst, cells, lines, rows - len(cells))
                cells, lines = [], []
    except csv.Error as e:
        raise InputError(f"{path}: line {reader.line_num + 1}: {e}")
    if cells:
        yield _answers(path, inst, cells, lines, rows - len(cells))


def _answers(path, inst, cells, lines, before) -> np.ndarray:
    """Convert each distinct cell text once; name the first cell of a bad one."""
    texts, inverse = np.unique(np.array(cells).ravel(), return_inverse=True)
    values = np.empty(len(texts))
    for k, text in enumerate(texts):
        try:
            values[k] = _answer(inst, str(text))
        except ValueError as e:
            i, j = divmod(int(np.flatnonzero(inverse == k)[0]), len(inst.columns))
            raise InputError(f"{path}: row {before + i + 1} (line {lines[i]}), column {inst.columns[j]!r}: {e}")
    return values[inverse].reshape(len(cells), len(inst.columns))


def _answer(inst: Instrument, text: str) -> float:
    if text.strip() in MISSING_TEXTS:
        return np.nan
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"not a number: {text!r}")
    if inst.zero_missing and v == 0:
        return np.nan
    if not inst.low <= v <= inst.high or (inst.whole and v != int(v)):
        kind = "a whole number" if inst.whole else "a number"
        raise ValueError(f"{text!r} is not {kind} from {inst.low:g} to {inst.high:g} ({inst.name})")
    return v


def score(inst: Instrument, answers) -> tuple[np.ndarray, np.ndarray]:
    """answers (m, items) in inst.columns order, NaN = unanswered -> traits (m, 5) in [0, 1]
    (item means, reverse-keyed items reversed) and keep (m,) per DROP_RULE."""
    rev = np.array([c in inst.reversed for c in inst.columns])
    A = np.where(rev, inst.low + inst.high - answers, answers)
    keep = np.ones(len(A), dtype=bool)
    means, start = [], 0
    for t in TRAITS:
        block = A[:, start : start + len(inst.items[t])]
        start += block.shape[1]
        answered = (~np.isnan(block)).sum(axis=1)
        keep &= 2 * (block.shape[1] - answered) <= block.shape[1]
        with np.errstate(invalid="ignore", divide="ignore"):
            means.append(np.nansum(block, axis=1) / answered)
    return (np.column_stack(means) - inst.low) / (inst.high - inst.low), keep


def builtin_traits(n: int, seed: int) -> np.ndarray:
    """(n, 5) traits in [0, 1] from the built-in population: multivariate normal, clipped to
    the scale's ends as scale scores are."""
    L = np.linalg.cholesky(POP_CORR)
    z = stream(seed, "population").standard_normal((n, len(TRAITS))) @ L.T
    return np.clip(POP_MEAN + POP_SD * z, 0.0, 1.0)


# --- the data set --------------------------------------------------------------------------


def generate(samples: int, seed: int, profiles: Profiles | None = None):
    """X (n, 39), y (n,), mu (n,) = E[y | X]: each row a profile with fresh vibe, spot, context
    and timing draws."""
    traits = builtin_traits(samples, seed) if profiles is None else cycle(profiles.traits, samples, seed)
    X = make_features(traits, seed)
    mu = true_mean(X)
    y = _fixed(draw_outcome(mu, stream(seed, "outcome")))
    return X, y, mu


def cycle(traits, samples: int, seed: int) -> np.ndarray:
    """samples rows of respondents' traits: one seeded shuffled order, repeated as needed."""
    order = stream(seed, "order").permutation(len(traits))
    return traits[order[np.arange(samples) % len(order)]]


def csv_text(X, y) -> str:
    rows = np.column_stack([X, y]).tolist()
    body = (",".join(f"{v:.{DIGITS}f}" for v in row) for row in rows)
    return "\n".join([",".join((*FEATURES, TARGET)), *body]) + "\n"


def noise_floor(y, mu) -> dict:
    """Expected (mean Var[y | x]) and realized (MSE of mu) floors, overall and per split."""
    default = Config()  # floors per split as training with the default split will see them
    split = split_rows(len(y), default.split_seed, default.val_fraction, default.test_fraction)
    parts = {"all": np.arange(len(y)), "train": split.train, "val": split.val, "test": split.test}
    var, err = conditional_variance(mu), (y - mu) ** 2
    return {
        "split_seed": default.split_seed,
        "expected": {k: float(var[rows].mean()) for k, rows in parts.items()},
        "realized": {k: float(err[rows].mean()) for k, rows in parts.items()},
    }


def sidecar(out: Path, text: str, args, y, mu, profiles: Profiles | None) -> dict:
    """Everything needed to trust and reproduce the CSV, beside it as <stem>.json."""
    var = conditional_variance(mu)
    return {
        "generator": SIDECAR_KIND,
        "generator_version": GENERATOR_VERSION,
        "seed": args.seed,
        "samples": args.samples,
        "rows": len(y),
        "csv": out.name,
        "csv_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "features": list(FEATURES),
        "target": TARGET,
        "decimals": DIGITS,
        "profiles": _profile_record(args, profiles),
        "noise": {
            "distribution": "beta",
            "concentration": CONCENTRATION,
            "conditional_mean": "mu = true_mean(x)",
            "conditional_variance": "mu (1 - mu) / (concentration + 1)",
            "sigma_rms": float(np.sqrt(var.mean())),
        },
        "noise_floor": float(var.mean()),  # expected MSE of the best possible predictor, all rows
        "noise_floor_by_split": noise_floor(y, mu),
        "target_mean": float(y.mean()),
        "target_sd": float(y.std()),
    }


def _profile_record(args, profiles: Profiles | None) -> dict:
    if profiles is None:
        return {"source": "builtin", "respondents_used": args.samples, "respondents_dropped": 0}
    return {
        "source": Path(args.big_five).name,
        "sha256": sha256_file(args.big_five),
        "format": profiles.instrument,
        "respondents_read": profiles.read,
        "respondents_used": len(profiles.traits),
        "respondents_dropped": profiles.dropped,
        "drop_rule": DROP_RULE,
        "reused": len(profiles.traits) < args.samples,  # cycled, with fresh draws per row
    }


# --- command line --------------------------------------------------------------------------


def add_commands(subparsers):
    p = subparsers.add_parser("data", help="build data sets")
    p.set_defaults(func=lambda args: p.print_help() or 2)
    sub = p.add_subparsers(metavar="SOURCE")
    h = sub.add_parser("hybrid", help="synthetic calling-score data from Big Five profiles, with its noise floor")
    h.add_argument("--out", required=True, type=Path, help="CSV to write; the sidecar goes beside it as .json")
    h.add_argument("--samples", type=_rows, default=10000, help="rows (default 10000)")
    h.add_argument("--seed", type=_seed, default=42, help="generator seed (default 42)")
    h.add_argument(
        "--big-five", type=Path, default=None, metavar="FILE",
        help="respondents' answers (IPIP-50 or SAPA-25 items) or trait scores 1-5; default: built-in population",
    )  # fmt: skip
    h.set_defaults(func=cmd_hybrid)


def _rows(text: str) -> int:
    if not text.isdigit() or int(text) < MIN_ROWS:
        raise argparse.ArgumentTypeError(f"expected an int >= {MIN_ROWS}, got {text!r}")
    return int(text)


def _seed(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected an int >= 0, got {text!r}")
    return int(text)


def cmd_hybrid(args) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".csv":
        raise InputError(f"{out}: --out must name a .csv file (its sidecar is written beside it as .json)")
    profiles = read_big_five(args.big_five) if args.big_five else None
    X, y, mu = generate(args.samples, args.seed, profiles)
    text = csv_text(X, y)
    record = sidecar(out, text, args, y, mu, profiles)
    atomic_write(out, text)
    write_json(out.with_suffix(".json"), record)
    print(
        f"wrote {out}: {len(y)} rows, noise floor {record['noise_floor']:.6f} "
        f"(profiles: {record['profiles']['source']})"
    )
    return 0
