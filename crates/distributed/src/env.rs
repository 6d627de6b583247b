//! The process's place in a data-parallel run, from the environment variables torchrun sets.

use crate::error::{DistError, Result};

/// The variables a launch must set together, in the order the errors check them.
pub const VARIABLES: [&str; 5] = [
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
];

/// This process's rank and the rendezvous address (torchrun's variables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistEnv {
    /// Global rank, 0..world_size.
    pub rank: usize,
    /// Rank on this node (picks the GPU).
    pub local_rank: usize,
    pub world_size: usize,
    /// Host of rank 0, which hosts the TCPStore.
    pub master_addr: String,
    pub master_port: u16,
}

impl DistEnv {
    /// One process, no rendezvous.
    pub fn single() -> Self {
        Self {
            rank: 0,
            local_rank: 0,
            world_size: 1,
            master_addr: "127.0.0.1".into(),
            master_port: 0,
        }
    }

    /// Reads the process environment: `Ok(None)` when none of the variables is set (a plain
    /// single-process run); an error naming the variable when some are set but not all, or
    /// one does not parse.
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`] over any variable lookup.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let values: Vec<Option<String>> = VARIABLES.iter().map(|v| lookup(v)).collect();
        let Some(set) = VARIABLES
            .iter()
            .zip(&values)
            .find_map(|(name, v)| v.as_ref().map(|_| *name))
        else {
            return Ok(None);
        };
        let get = |i: usize| -> Result<&str> {
            values[i].as_deref().ok_or(DistError::MissingVar {
                var: VARIABLES[i],
                set,
            })
        };
        let number = |i: usize| -> Result<usize> {
            let text = get(i)?;
            text.trim().parse().map_err(|_| DistError::InvalidVar {
                var: VARIABLES[i],
                value: text.to_owned(),
                reason: "not a non-negative integer".into(),
            })
        };
        let rank = number(0)?;
        let local_rank = number(1)?;
        let world_size = number(2)?;
        let master_addr = get(3)?.trim().to_owned();
        let port_text = get(4)?;
        let master_port: u16 = port_text
            .trim()
            .parse()
            .map_err(|_| DistError::InvalidVar {
                var: "MASTER_PORT",
                value: port_text.to_owned(),
                reason: "not a port number (0..=65535)".into(),
            })?;
        let invalid = |var: &'static str, value: String, reason: String| DistError::InvalidVar {
            var,
            value,
            reason,
        };
        if world_size == 0 {
            return Err(invalid(
                "WORLD_SIZE",
                "0".into(),
                "must be at least 1".into(),
            ));
        }
        if rank >= world_size {
            return Err(invalid(
                "RANK",
                rank.to_string(),
                format!("must be below WORLD_SIZE={world_size}"),
            ));
        }
        if local_rank > rank {
            return Err(invalid(
                "LOCAL_RANK",
                local_rank.to_string(),
                format!("cannot exceed RANK={rank} (ranks are numbered node by node)"),
            ));
        }
        if master_addr.is_empty() {
            return Err(invalid("MASTER_ADDR", String::new(), "is empty".into()));
        }
        if master_port == 0 && world_size > 1 {
            return Err(invalid(
                "MASTER_PORT",
                "0".into(),
                "rank 0's store needs a fixed port every rank knows".into(),
            ));
        }
        Ok(Some(Self {
            rank,
            local_rank,
            world_size,
            master_addr,
            master_port,
        }))
    }

    pub fn is_distributed(&self) -> bool {
        self.world_size > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<Option<DistEnv>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        DistEnv::from_lookup(|k| map.get(k).cloned())
    }

    const FULL: [(&str, &str); 5] = [
        ("RANK", "3"),
        ("LOCAL_RANK", "1"),
        ("WORLD_SIZE", "4"),
        ("MASTER_ADDR", "node0"),
        ("MASTER_PORT", "29500"),
    ];

    #[test]
    fn no_variable_is_a_single_process_and_all_five_a_rank() {
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(
            parse(&FULL).unwrap(),
            Some(DistEnv {
                rank: 3,
                local_rank: 1,
                world_size: 4,
                master_addr: "node0".into(),
                master_port: 29500,
            })
        );
    }

    #[test]
    fn a_missing_or_bad_variable_is_named() {
        for (skip, missing) in VARIABLES.iter().enumerate() {
            let pairs: Vec<_> = FULL
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, p)| *p)
                .collect();
            let err = parse(&pairs).unwrap_err();
            assert!(
                matches!(&err, DistError::MissingVar { var, .. } if var == missing),
                "{err}"
            );
        }
        let with = |name: &str, value: &'static str| {
            let pairs: Vec<(&str, &str)> = FULL
                .iter()
                .map(|&(k, v)| if k == name { (k, value) } else { (k, v) })
                .collect();
            parse(&pairs).unwrap_err()
        };
        let named = |err: DistError, name: &str| {
            assert!(
                matches!(&err, DistError::InvalidVar { var, .. } if *var == name),
                "{err}"
            );
        };
        named(with("RANK", "x"), "RANK");
        named(with("RANK", "4"), "RANK");
        named(with("WORLD_SIZE", "0"), "WORLD_SIZE");
        named(with("LOCAL_RANK", "-1"), "LOCAL_RANK");
        named(with("MASTER_PORT", "70000"), "MASTER_PORT");
        named(with("MASTER_PORT", "0"), "MASTER_PORT");
        named(with("MASTER_ADDR", " "), "MASTER_ADDR");
    }
}
