//! `promfed leader pin|unpin`: the leader API (`POST`/`DELETE /api/v1/leader/{group}`), saying
//! what changed: the pin, and who leads now compared with before.

use super::api::{Api, ApiError};
use super::status::GroupView;
use crate::serve::app::PinRequest;
use reqwest::Method;

/// Pins `replica` as `group`'s leader; returns what to print.
pub async fn pin(api: &Api, group: &str, replica: &str) -> Result<String, ApiError> {
    let before = current(api, group).await;
    let body = serde_json::to_string(&PinRequest { replica: replica.to_owned() }).unwrap_or_default();
    let after: GroupView = api.json(Method::POST, &["api", "v1", "leader", group], Some(body)).await?;
    Ok(describe(group, before.as_ref(), &after))
}

/// Removes `group`'s pin; returns what to print.
pub async fn unpin(api: &Api, group: &str) -> Result<String, ApiError> {
    let before = current(api, group).await;
    let after: GroupView = api.json(Method::DELETE, &["api", "v1", "leader", group], None).await?;
    Ok(describe(group, before.as_ref(), &after))
}

/// The group's state before the change, when it can be had: only to say what changed, so a
/// failure here is left to the change request itself to report.
async fn current(api: &Api, group: &str) -> Option<GroupView> {
    let groups: Vec<GroupView> = api.json(Method::GET, &["api", "v1", "status", "groups"], None).await.ok()?;
    groups.into_iter().find(|g| g.name == group)
}

/// What changed, in a few lines.
pub fn describe(group: &str, before: Option<&GroupView>, after: &GroupView) -> String {
    let name = |v: Option<&String>| v.map_or_else(|| "none".to_owned(), Clone::clone);
    let mut out = String::new();
    let was = |f: fn(&GroupView) -> Option<&String>| match before {
        Some(b) if f(b) != f(after) => format!(" (was {})", name(f(b))),
        Some(_) => " (unchanged)".to_owned(),
        None => String::new(),
    };
    out.push_str(&format!("group {group}: pinned {}{}\n", name(after.pinned.as_ref()), was(|g| g.pinned.as_ref())));
    out.push_str(&format!("group {group}: leader {}{}\n", name(after.leader.as_ref()), was(|g| g.leader.as_ref())));
    match &after.pinned {
        Some(p) if after.leader.as_ref() != Some(p) => {
            let health = after.replicas.iter().find(|r| &r.name == p).and_then(|r| r.healthy);
            let health = match health {
                Some(true) => "healthy",
                Some(false) => "unhealthy",
                None => "not scraped yet",
            };
            out.push_str(&format!(
                "note: {p} is {health}; it leads once it has had the group's hold_down of good scrapes\n"
            ));
        }
        None if after.leader.is_some() && after.leader != after.preferred => {
            out.push_str(&format!(
                "note: the preferred replica {} leads again after hold_down good scrapes\n",
                name(after.preferred.as_ref())
            ));
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::status::ReplicaView;

    fn group(leader: &str, pinned: Option<&str>, b_healthy: Option<bool>) -> GroupView {
        GroupView {
            name: "eu".into(),
            leader: Some(leader.into()),
            preferred: Some(pinned.unwrap_or("a").into()),
            pinned: pinned.map(Into::into),
            replicas: vec![
                ReplicaView { name: "a".into(), healthy: Some(true), ..ReplicaView::default() },
                ReplicaView { name: "b".into(), healthy: b_healthy, ..ReplicaView::default() },
            ],
            ..GroupView::default()
        }
    }

    #[test]
    fn says_what_changed() {
        let before = group("a", None, Some(true));
        assert_eq!(
            describe("eu", Some(&before), &group("b", Some("b"), Some(true))),
            "group eu: pinned b (was none)\ngroup eu: leader b (was a)\n"
        );
        assert_eq!(
            describe("eu", Some(&before), &group("a", Some("b"), Some(false))),
            "group eu: pinned b (was none)\ngroup eu: leader a (unchanged)\n\
             note: b is unhealthy; it leads once it has had the group's hold_down of good scrapes\n"
        );
        let mut unpinned = group("b", None, Some(true));
        unpinned.preferred = Some("a".into());
        assert_eq!(
            describe("eu", Some(&group("b", Some("b"), Some(true))), &unpinned),
            "group eu: pinned none (was b)\ngroup eu: leader b (unchanged)\n\
             note: the preferred replica a leads again after hold_down good scrapes\n"
        );
        assert_eq!(describe("eu", None, &group("a", None, None)), "group eu: pinned none\ngroup eu: leader a\n");
    }
}
