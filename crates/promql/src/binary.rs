//! Binary operators: arithmetic, comparison (with and without `bool`), set operators, and
//! vector matching (`on`, `ignoring`, `group_left`, `group_right`).
//! See <https://prometheus.io/docs/prometheus/latest/querying/operators/>.

use std::collections::HashMap;

use promql_parser::label::Labels as NameList;
use promql_parser::parser::token::*;
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};
use telltale_model::{Labels, METRIC_NAME};

use crate::engine::drop_metric_name;
use crate::error::{Error, Result};
use crate::eval::{by_step, ESeries, EVal, Evaluator, SeriesBuilder};

/// Applies a float operator; comparisons return the left value and whether to keep it.
pub(crate) fn float_binop(op: TokenId, l: f64, r: f64) -> (f64, bool) {
    match op {
        T_ADD => (l + r, true),
        T_SUB => (l - r, true),
        T_MUL => (l * r, true),
        T_DIV => (l / r, true),
        T_POW => (l.powf(r), true),
        T_MOD => (l % r, true),
        T_ATAN2 => (l.atan2(r), true),
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        _ => (f64::NAN, false),
    }
}

fn is_comparison(op: TokenId) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

fn is_set(op: TokenId) -> bool {
    matches!(op, T_LAND | T_LOR | T_LUNLESS)
}

/// Arithmetic operators drop the metric name; comparisons and set operators keep it.
fn drops_name(op: TokenId) -> bool {
    !is_comparison(op) && !is_set(op)
}

pub(crate) fn eval_binary(ev: &Evaluator<'_>, b: &BinaryExpr) -> Result<EVal> {
    let op = b.op.id();
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    if b.modifier.as_ref().is_some_and(|m| m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some()) {
        // Parsed by promql-parser but not evaluated here yet: refusing beats answering `a + b`.
        return Err(Error::bad("the fill(), fill_left() and fill_right() modifiers are not supported yet"));
    }
    let lhs = ev.eval(&b.lhs)?;
    let rhs = ev.eval(&b.rhs)?;
    match (lhs, rhs) {
        (EVal::Scalar(l), EVal::Scalar(r)) => Ok(EVal::Scalar(
            l.into_iter()
                .zip(r)
                .map(|(l, r)| {
                    let (v, keep) = float_binop(op, l, r);
                    if is_comparison(op) {
                        if keep {
                            1.0
                        } else {
                            0.0
                        }
                    } else {
                        v
                    }
                })
                .collect(),
        )),
        (EVal::Vector(v), EVal::Scalar(s)) => Ok(EVal::Vector(vector_scalar(ev, v, &s, op, false, return_bool))),
        (EVal::Scalar(s), EVal::Vector(v)) => Ok(EVal::Vector(vector_scalar(ev, v, &s, op, true, return_bool))),
        (EVal::Vector(l), EVal::Vector(r)) => {
            if is_set(op) {
                set_op(ev, l, r, op, b.modifier.as_ref().and_then(|m| m.matching.as_ref())).map(EVal::Vector)
            } else {
                vector_vector(ev, l, r, b).map(EVal::Vector)
            }
        }
        _ => Err(Error::bad(format!("binary expression must contain only scalar and instant vector types: {b}"))),
    }
}

fn vector_scalar(
    ev: &Evaluator<'_>,
    mut v: Vec<ESeries>,
    s: &[f64],
    op: TokenId,
    swap: bool,
    return_bool: bool,
) -> Vec<ESeries> {
    let comparison = is_comparison(op);
    for series in &mut v {
        series.points.retain_mut(|p| {
            let sv = s[ev.steps.index(p.t)];
            let (l, r) = if swap { (sv, p.v) } else { (p.v, sv) };
            let (mut val, keep) = float_binop(op, l, r);
            // A comparison keeps the vector's value even when the scalar is on the left.
            if comparison && swap {
                val = r;
            }
            if return_bool {
                p.v = if keep { 1.0 } else { 0.0 };
                return true;
            }
            p.v = val;
            keep
        });
        if drops_name(op) || return_bool {
            series.drop_name = true;
        }
    }
    v.retain(|s| !s.points.is_empty());
    v
}

/// The labels two series are matched on.
fn signature(l: &Labels, matching: Option<&LabelModifier>) -> Labels {
    let mut b = l.to_builder();
    match matching {
        Some(LabelModifier::Include(on)) => {
            b.retain(|n, _| on.labels.iter().any(|x| x == n));
        }
        Some(LabelModifier::Exclude(ign)) => {
            b.retain(|n, _| n != METRIC_NAME && !ign.labels.iter().any(|x| x == n));
        }
        None => {
            b.remove(METRIC_NAME);
        }
    }
    b.build().unwrap_or_default()
}

fn set_op(
    ev: &Evaluator<'_>,
    lhs: Vec<ESeries>,
    rhs: Vec<ESeries>,
    op: TokenId,
    matching: Option<&LabelModifier>,
) -> Result<Vec<ESeries>> {
    let mut sig_ids: HashMap<Labels, usize> = HashMap::new();
    let mut sig_id = |l: Labels| {
        let next = sig_ids.len();
        *sig_ids.entry(l).or_insert(next)
    };
    let lsig: Vec<usize> = lhs.iter().map(|s| sig_id(signature(&s.labels, matching))).collect();
    let rsig: Vec<usize> = rhs.iter().map(|s| sig_id(signature(&s.labels, matching))).collect();
    let mut present = vec![false; sig_ids.len()];
    let lsteps = by_step(&lhs, &ev.steps);
    let rsteps = by_step(&rhs, &ev.steps);
    let mut out = SeriesBuilder::new();
    let lslot: Vec<usize> = lhs.iter().map(|s| out.slot(&s.labels, s.drop_name)).collect();
    let rslot: Vec<usize> = rhs.iter().map(|s| out.slot(&s.labels, s.drop_name)).collect();
    for (i, (l, r)) in lsteps.iter().zip(&rsteps).enumerate() {
        let t = ev.steps.ts(i);
        // The side whose signatures are looked up: rhs for `and`/`unless`, lhs for `or`.
        let (probe, probe_sig) = if op == T_LOR { (l, &lsig) } else { (r, &rsig) };
        for (j, _) in probe {
            present[probe_sig[*j]] = true;
        }
        match op {
            T_LAND => {
                for (j, v) in l {
                    if present[lsig[*j]] {
                        out.push_slot(lslot[*j], t, *v);
                    }
                }
            }
            T_LOR => {
                for (j, v) in l {
                    out.push_slot(lslot[*j], t, *v);
                }
                for (j, v) in r {
                    if !present[rsig[*j]] {
                        out.push_slot(rslot[*j], t, *v);
                    }
                }
            }
            _ => {
                for (j, v) in l {
                    if !present[lsig[*j]] {
                        out.push_slot(lslot[*j], t, *v);
                    }
                }
            }
        }
        for (j, _) in probe {
            present[probe_sig[*j]] = false;
        }
    }
    Ok(out.finish())
}

fn vector_vector(ev: &Evaluator<'_>, lhs: Vec<ESeries>, rhs: Vec<ESeries>, b: &BinaryExpr) -> Result<Vec<ESeries>> {
    let op = b.op.id();
    let modifier = b.modifier.as_ref();
    let return_bool = modifier.is_some_and(|m| m.return_bool);
    let matching = modifier.and_then(|m| m.matching.as_ref());
    let card = modifier.map(|m| m.card.clone()).unwrap_or(VectorMatchCardinality::OneToOne);
    let empty = NameList { labels: Vec::new() };
    let (one_to_many, include) = match &card {
        VectorMatchCardinality::OneToMany(l) => (true, l),
        VectorMatchCardinality::ManyToOne(l) => (false, l),
        _ => (false, &empty),
    };
    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne | VectorMatchCardinality::ManyToMany);
    // For one-to-many, swap sides and account for the swap when computing values.
    let (many, one) = if one_to_many { (&rhs, &lhs) } else { (&lhs, &rhs) };
    // Signatures become small integers once per series, so the per-step work is array
    // indexing rather than hashing label sets.
    let mut sig_ids: HashMap<Labels, usize> = HashMap::new();
    let mut sig_id = |l: Labels| {
        let next = sig_ids.len();
        *sig_ids.entry(l).or_insert(next)
    };
    let msig: Vec<usize> = many.iter().map(|s| sig_id(signature(&s.labels, matching))).collect();
    let osig: Vec<usize> = one.iter().map(|s| sig_id(signature(&s.labels, matching))).collect();
    let nsigs = sig_ids.len();
    let msteps = by_step(many, &ev.steps);
    let osteps = by_step(one, &ev.steps);
    let mut out = SeriesBuilder::new();
    // Output slot of each (many, one) pair, computed on first use.
    let mut slots: HashMap<(usize, usize), usize> = HashMap::new();
    let mut one_at: Vec<Option<(usize, f64)>> = vec![None; nsigs];
    let mut matched: Vec<bool> = vec![false; nsigs];
    let mut slot_used: HashMap<(usize, usize), ()> = HashMap::new();
    for (i, (m, o)) in msteps.iter().zip(&osteps).enumerate() {
        ev.ctx.check_deadline()?;
        let t = ev.steps.ts(i);
        for &(j, v) in o {
            if let Some((dup, _)) = one_at[osig[j]] {
                let side = if one_to_many { "left" } else { "right" };
                return Err(Error::exec(format!(
                    "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    match_labels_string(&one[j].labels, matching),
                    prom_labels(&one[dup].labels),
                    prom_labels(&one[j].labels)
                )));
            }
            one_at[osig[j]] = Some((j, v));
        }
        slot_used.clear();
        let mut result = Ok(());
        for &(j, mv) in m {
            let sig = msig[j];
            let Some((k, ov)) = one_at[sig] else { continue };
            let slot = *slots.entry((j, k)).or_insert_with(|| {
                let labels = result_labels(&many[j].labels, &one[k].labels, op, matching, one_to_one, include);
                let drop = return_bool || (!drops_name(op) && many[j].drop_name);
                out.slot(&labels, drop)
            });
            if one_to_one {
                if matched[sig] {
                    result = Err(Error::exec(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                    ));
                    break;
                }
                matched[sig] = true;
            } else if slot_used.insert((sig, slot), ()).is_some() {
                result = Err(Error::exec("multiple matches for labels: grouping labels must ensure unique matches"));
                break;
            }
            // Matching errors are raised even for pairs a comparison then filters out.
            let (l, r) = if one_to_many { (ov, mv) } else { (mv, ov) };
            let (mut v, keep) = float_binop(op, l, r);
            if return_bool {
                v = if keep { 1.0 } else { 0.0 };
            } else if !keep {
                continue;
            }
            out.push_slot(slot, t, v);
        }
        result?;
        for &(j, _) in o {
            one_at[osig[j]] = None;
        }
        for &(j, _) in m {
            matched[msig[j]] = false;
        }
    }
    Ok(out.finish())
}

fn match_labels_string(l: &Labels, matching: Option<&LabelModifier>) -> String {
    let mut b = l.to_builder();
    match matching {
        Some(LabelModifier::Include(on)) => {
            b.retain(|n, _| on.labels.iter().any(|x| x == n));
        }
        Some(LabelModifier::Exclude(ign)) => {
            b.retain(|n, _| !ign.labels.iter().any(|x| x == n));
        }
        None => {}
    }
    prom_labels(&b.build().unwrap_or_default())
}

fn result_labels(
    many: &Labels,
    one: &Labels,
    op: TokenId,
    matching: Option<&LabelModifier>,
    one_to_one: bool,
    include: &NameList,
) -> Labels {
    let mut b = many.to_builder();
    if drops_name(op) {
        b.remove(METRIC_NAME);
    }
    if one_to_one {
        match matching {
            Some(LabelModifier::Include(on)) => {
                b.retain(|n, _| on.labels.iter().any(|x| x == n));
            }
            Some(LabelModifier::Exclude(ign)) => {
                b.retain(|n, _| !ign.labels.iter().any(|x| x == n));
            }
            None => {}
        }
    }
    for name in &include.labels {
        match one.get(name) {
            Some(v) => {
                b.set(name, v);
            }
            None => {
                b.remove(name);
            }
        }
    }
    let out = b.build().unwrap_or_default();
    if out.get(METRIC_NAME).is_some() && drops_name(op) {
        drop_metric_name(&out)
    } else {
        out
    }
}

/// Labels as Prometheus prints them in messages: `{__name__="x", a="b"}`.
pub(crate) fn prom_labels(l: &Labels) -> String {
    let pairs: Vec<String> = l.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}
