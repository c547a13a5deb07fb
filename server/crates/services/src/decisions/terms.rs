//! What an approval agrees to and how a later one compares: the scope changes against
//! the request, and the widenings (scope, visibility, ranges, budget, end date) that make a
//! second approver's decision a new first approval (the two-person rule).

use super::*;

/// How `granted` differs from `requested`: the object and field levels of
/// [`Scope::diff`], plus View All / Modify All, which the flat diff does not carry; they
/// appear as `Case: View All` (granted as read) and `Case: Modify All` (granted as edit).
pub fn scope_changes(requested: &Scope, granted: &Scope) -> Vec<ScopeChange> {
    let mut changes = requested.diff(granted);
    let flag = |scope: &Scope, object: &str, which: &str| {
        scope.object(object).is_some_and(|o| match which {
            "View All" => o.view_all,
            _ => o.modify_all,
        })
    };
    let mut objects: Vec<&str> = requested
        .objects
        .iter()
        .chain(&granted.objects)
        .map(|o| o.object.as_str())
        .collect();
    objects.sort_unstable_by_key(|o| o.to_ascii_lowercase());
    objects.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    for object in objects {
        for (which, level) in [("View All", Level::Read), ("Modify All", Level::Edit)] {
            let asked = flag(requested, object, which);
            let given = flag(granted, object, which);
            if asked != given {
                changes.push(ScopeChange {
                    item: format!("{object}: {which}"),
                    requested: asked.then_some(level),
                    granted: given.then_some(level),
                });
            }
        }
    }
    changes
}

/// Whether `granted` may show records `requested` would not: another rule or group, or
/// chosen records that were not asked for. (Dropping records is narrowing.)
pub(super) fn visibility_widens(requested: &Visibility, granted: &Visibility) -> bool {
    requested.rule != granted.rule
        || (granted.rule == VisibilityRule::Group && requested.group != granted.group)
        || granted
            .record_ids
            .iter()
            .any(|id| !requested.record_ids.contains(id))
}

/// Where `granted` gives more access than `approved`: widening scope changes and records
/// `approved` did not show.
pub(super) fn scope_widenings(approved: &Scope, granted: &Scope) -> Vec<String> {
    let mut out: Vec<String> = scope_changes(approved, granted)
        .iter()
        .filter(|c| c.is_widening())
        .map(|c| {
            format!(
                "access: {} ({} instead of {})",
                c.item,
                c.granted.map_or("none", Level::as_str),
                c.requested.map_or("none", Level::as_str)
            )
        })
        .collect();
    if visibility_widens(&approved.visibility, &granted.visibility) {
        out.push(format!(
            "records: {} instead of {}",
            granted.visibility.rule.describe(),
            approved.visibility.rule.describe()
        ));
    }
    out
}

/// Whether an earlier approval of `approved` covers the scope `granted` gives.
#[cfg(test)]
pub(super) fn covers(approved: &Scope, granted: &Scope) -> bool {
    scope_widenings(approved, granted).is_empty()
}

/// Everything a decision grants (or a request asks for), field by field.
pub(super) struct Terms {
    pub(super) scope: Scope,
    pub(super) budget: Budget,
    pub(super) end_date: NaiveDate,
    /// Empty: any address.
    pub(super) ip_ranges: Vec<Cidr>,
}

impl Terms {
    /// An approval as stored in `decisions`; `None` when a part cannot be read (such an
    /// approval covers nothing).
    pub(super) fn stored(
        scope: Option<&str>,
        budget: Option<&str>,
        end_date: Option<&str>,
        ip_ranges: Option<&str>,
    ) -> Option<Terms> {
        let scope: Scope = serde_json::from_str(scope?).ok()?;
        let budget: Budget = serde_json::from_str(budget?).ok()?;
        let end_date = NaiveDate::parse_from_str(end_date?, "%Y-%m-%d").ok()?;
        let ranges: Vec<String> = serde_json::from_str(ip_ranges?).ok()?;
        let ip_ranges = ranges
            .iter()
            .map(|r| Cidr::parse(r).ok())
            .collect::<Option<Vec<_>>>()?;
        Some(Terms {
            scope,
            budget,
            end_date,
            ip_ranges,
        })
    }

    /// What the contractor asked for: their scope, calls per day (with the budget the
    /// decision form starts from: 7 days' worth a week, a warning at 80%, alerts only),
    /// end date and IP ranges.
    pub(super) fn requested(pending: &Pending) -> Option<Terms> {
        let calls = u64::try_from(pending.calls_per_day).unwrap_or(1).max(1);
        let ranges: Vec<String> = serde_json::from_str(&pending.ip_ranges).ok()?;
        Terms::stored(
            Some(&to_json(&pending.scope)),
            Some(&to_json(&Budget::default_for(calls))),
            Some(&pending.end_date),
            Some(&to_json(&ranges)),
        )
    }
}

pub(super) fn ranges_text(ranges: &[Cidr]) -> String {
    if ranges.is_empty() {
        "any address".into()
    } else {
        ranges
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Where `later` gives more than `earlier`, in words; empty when `earlier` covers all of
/// it. Every field counts: the scope and records, calls per day and per 7 days, the warning
/// percentage (a later warning is less warning), the over-budget action (alert only is less
/// than freeze), the end date, and the IP ranges (each of `later`'s inside `earlier`'s;
/// none means any address, the widest).
///
/// When a request needs two approvals, each approval counted must cover all of the final
/// grant: a second approver who widens anything the first approved does not get the first
/// approval counted, and a third person must agree. Narrowing is always fine: the grant
/// takes the last approver's values (see [`Portal::approve`]).
pub(super) fn widenings(earlier: &Terms, later: &Terms) -> Vec<String> {
    let mut out = scope_widenings(&earlier.scope, &later.scope);
    let (was, now) = (&earlier.budget, &later.budget);
    if now.calls_per_day > was.calls_per_day {
        out.push(format!(
            "calls per day: {} instead of {}",
            now.calls_per_day, was.calls_per_day
        ));
    }
    if now.calls_per_7_days > was.calls_per_7_days {
        out.push(format!(
            "calls per 7 days: {} instead of {}",
            now.calls_per_7_days, was.calls_per_7_days
        ));
    }
    if now.warn_percent > was.warn_percent {
        out.push(format!(
            "warning at {}% instead of {}%",
            now.warn_percent, was.warn_percent
        ));
    }
    if was.hard_action == HardAction::Freeze && now.hard_action != HardAction::Freeze {
        out.push(format!(
            "over budget: {} instead of {}",
            now.hard_action.label(),
            was.hard_action.label()
        ));
    }
    if later.end_date > earlier.end_date {
        out.push(format!(
            "end date: {} instead of {}",
            later.end_date, earlier.end_date
        ));
    }
    if !earlier.ip_ranges.is_empty() {
        let outside: Vec<&Cidr> = if later.ip_ranges.is_empty() {
            Vec::new()
        } else {
            later
                .ip_ranges
                .iter()
                .filter(|r| !r.covered_by(&earlier.ip_ranges))
                .collect()
        };
        if later.ip_ranges.is_empty() || !outside.is_empty() {
            out.push(format!(
                "IP ranges: {} not within {}",
                if outside.is_empty() {
                    "any address".to_string()
                } else {
                    outside
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                ranges_text(&earlier.ip_ranges)
            ));
        }
    }
    out
}
