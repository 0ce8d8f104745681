//! A container's request: the grammar of `KERNEL_MODULES` and the annotation
//! `modgate.io/kernel-modules`. Comma-separated names; blanks around items trimmed;
//! empty items ignored; each item a module name that cannot look like an option.

use crate::name::{ModuleName, NameError};

/// The most names one request may carry.
pub const MAX_ITEMS: usize = 64;

/// How much of a bad item an error shows: more than a valid name's 55 characters, so
/// any item cut short is longer than a name can be.
pub const SHOWN_ITEM_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("item {item:?} of {origin} is not a module name")]
    BadItem {
        /// The item as given, [`crate::shortened`] to [`SHOWN_ITEM_CHARS`] characters:
        /// a 1 MB item must not make a 1 MB error line.
        item: String,
        origin: &'static str,
        #[source]
        source: NameError,
    },
    #[error("{count} modules requested; at most {MAX_ITEMS} are allowed in one request")]
    TooMany { count: usize },
}

/// Validated, de-duplicated names, in the order first given.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Request {
    names: Vec<ModuleName>,
}

impl Request {
    /// Parses one source; `origin` names it in errors (`KERNEL_MODULES`, the annotation).
    pub fn parse(raw: &str, origin: &'static str) -> Result<Self, RequestError> {
        let mut r = Request::default();
        r.extend(raw, origin)?;
        Ok(r)
    }

    /// Adds the items of another source after this one's (duplicates dropped).
    pub fn extend(&mut self, raw: &str, origin: &'static str) -> Result<(), RequestError> {
        let items: Vec<&str> = raw
            .split(',')
            .map(|i| i.trim_matches([' ', '\t']))
            .filter(|i| !i.is_empty())
            .collect();
        if items.len() > MAX_ITEMS {
            return Err(RequestError::TooMany { count: items.len() });
        }
        for item in items {
            let name = ModuleName::parse(item).map_err(|source| RequestError::BadItem {
                item: crate::shortened(item, SHOWN_ITEM_CHARS).into_owned(),
                origin,
                source,
            })?;
            if !self.names.contains(&name) {
                self.names.push(name);
            }
        }
        if self.names.len() > MAX_ITEMS {
            return Err(RequestError::TooMany {
                count: self.names.len(),
            });
        }
        Ok(())
    }

    pub fn names(&self) -> &[ModuleName] {
        &self.names
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        let ok: &[(&str, &[&str])] = &[
            ("ip_vs,ip_vs_wrr", &["ip_vs", "ip_vs_wrr"]),
            (" ip_vs , ip-vs-wrr ,,", &["ip_vs", "ip_vs_wrr"]),
            ("", &[]),
            (",,, ", &[]),
            ("ip_vs,ip-vs,ip_vs", &["ip_vs"]),
        ];
        for (raw, want) in ok {
            let r = Request::parse(raw, "KERNEL_MODULES").expect(raw);
            let got: Vec<&str> = r.names().iter().map(|n| n.as_str()).collect();
            assert_eq!(&got, want, "{raw:?}");
        }
        let bad = [
            "-r,ip_vs",
            "ip_vs,--force",
            "ip_vs;rm",
            "a b",
            "../x",
            "ip_vs\n",
            "x=1",
        ];
        for raw in bad {
            assert!(
                Request::parse(raw, "KERNEL_MODULES").is_err(),
                "{raw:?} must be refused"
            );
        }
        let err = Request::parse("-r,ip_vs", "KERNEL_MODULES").unwrap_err();
        assert_eq!(
            err.to_string(),
            "item \"-r\" of KERNEL_MODULES is not a module name"
        );
    }

    #[test]
    fn limits() {
        let many: Vec<String> = (0..65).map(|i| format!("m{i}")).collect();
        assert_eq!(
            Request::parse(&many.join(","), "x"),
            Err(RequestError::TooMany { count: 65 })
        );
        assert!(Request::parse(&many[..64].join(","), "x").is_ok());
        let mut r = Request::parse(&many[..40].join(","), "a").unwrap();
        assert!(r.extend(&many[40..].join(","), "b").is_err());
    }

    #[test]
    fn a_long_bad_item_is_shown_cut_short() {
        let huge = "a".repeat(1 << 20);
        let err = Request::parse(&huge, "KERNEL_MODULES")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "item \"{0}[... 1048512 bytes ...]{0}\" of KERNEL_MODULES is not a module name",
                "a".repeat(SHOWN_ITEM_CHARS / 2)
            )
        );
        // Cut on a character boundary, whatever the bytes.
        let wide = "\u{ff49}".repeat(100);
        let err = Request::parse(&wide, "x").unwrap_err().to_string();
        assert!(
            err.contains(&"\u{ff49}".repeat(SHOWN_ITEM_CHARS / 2)),
            "{err}"
        );
        assert!(err.contains("[... 108 bytes ...]"), "{err}");
        let exact = "b".repeat(SHOWN_ITEM_CHARS);
        let err = Request::parse(&exact, "x").unwrap_err().to_string();
        assert!(err.contains(&format!("\"{exact}\"")), "{err}");
    }

    #[test]
    fn merge_keeps_order_and_drops_duplicates() {
        let mut r = Request::parse("ip_vs,dummy", "KERNEL_MODULES").unwrap();
        r.extend("veth,ip_vs", "annotation").unwrap();
        let got: Vec<&str> = r.names().iter().map(|n| n.as_str()).collect();
        assert_eq!(got, ["ip_vs", "dummy", "veth"]);
    }
}
