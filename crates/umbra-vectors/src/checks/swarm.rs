//! Categories of `swarm.json` (`test-vectors/README.md`, "Swarms"; spec
//! `shared/spec/swarms.md` §1–2 and §4.2–4.3): `swarm_space`, `swarm_select`,
//! `swarm_boundaries`, `new_swarm_id`, `new_swarm_id_sequence`.

use serde_json::{Map, Value};
use umbra_proto::swarm::space::swarm_space_of_id_bytes;
use umbra_proto::swarm::{SwarmId, SwarmRing, SwarmRng, new_swarm_id};

use crate::input::{Malformed, dec, dec_u64};
use crate::{Category, CheckError, Input, Output};

/// The categories of this file.
pub(crate) const CATEGORIES: &[Category] = &[
    Category {
        name: "swarm_space",
        inputs: &["pubkey"],
        outputs: Some(&["swarm_space"]),
        run: swarm_space,
    },
    Category {
        name: "swarm_select",
        inputs: &["swarm_ids", "pubkey"],
        outputs: Some(&["swarm_id"]),
        run: swarm_select,
    },
    Category {
        name: "swarm_boundaries",
        inputs: &["swarm_ids", "swarm_id"],
        outputs: Some(&["lo", "hi"]),
        run: swarm_boundaries,
    },
    Category {
        name: "new_swarm_id",
        inputs: &["swarm_ids"],
        outputs: Some(&["new_swarm_id"]),
        run: new_id,
    },
    Category {
        name: "new_swarm_id_sequence",
        inputs: &["seed", "steps", "indices"],
        outputs: Some(&["count", "ids_at"]),
        run: new_id_sequence,
    },
];

/// A 33-byte account key (`pubkey`); other sizes are malformed.
fn pubkey(input: &Input) -> Result<Vec<u8>, CheckError> {
    let pk = input.bytes("pubkey")?;
    if pk.len() != 33 {
        return Err(Malformed::new("pubkey", format!("must be 33 bytes, got {}", pk.len())).into());
    }
    Ok(pk)
}

/// `swarm_ids`: a list of u64 strings, each a swarm ID, strictly ascending.
fn swarm_ids(input: &Input) -> Result<Vec<SwarmId>, CheckError> {
    let mut out = Vec::new();
    for v in input.array("swarm_ids")? {
        let s = v
            .as_str()
            .ok_or_else(|| Malformed::new("swarm_ids", "entries must be strings"))?;
        let n = dec_u64("swarm_ids", s)?;
        out.push(SwarmId::new(n).map_err(|e| Malformed::new("swarm_ids", e.to_string()))?);
    }
    if out.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Malformed::new("swarm_ids", "must be ascending and distinct").into());
    }
    Ok(out)
}

fn ring(input: &Input) -> Result<SwarmRing, CheckError> {
    SwarmRing::from_sorted(swarm_ids(input)?).map_err(CheckError::refused)
}

fn out1(key: &str, v: Value) -> Output {
    let mut m = Map::new();
    m.insert(key.to_string(), v);
    m
}

fn swarm_space(input: &Input) -> Result<Output, CheckError> {
    let pos = swarm_space_of_id_bytes(&pubkey(input)?).map_err(CheckError::refused)?;
    Ok(out1("swarm_space", dec(pos)))
}

fn swarm_select(input: &Input) -> Result<Output, CheckError> {
    let ring = ring(input)?;
    let pos = swarm_space_of_id_bytes(&pubkey(input)?).map_err(CheckError::refused)?;
    Ok(out1("swarm_id", dec(ring.select(pos).get())))
}

fn swarm_boundaries(input: &Input) -> Result<Output, CheckError> {
    let ring = ring(input)?;
    let id = SwarmId::new(input.u64("swarm_id")?).map_err(CheckError::refused)?;
    let range = ring.range(id).map_err(CheckError::refused)?;
    let mut m = Map::new();
    m.insert("lo".into(), dec(range.lo()));
    m.insert("hi".into(), dec(range.hi()));
    Ok(m)
}

fn new_id(input: &Input) -> Result<Output, CheckError> {
    let id = new_swarm_id(&swarm_ids(input)?).map_err(CheckError::refused)?;
    Ok(out1("new_swarm_id", dec(id.get())))
}

/// The simulation of the vectors README: `r = next output`; `r < 2^62`
/// removes the element at position `r mod |S|`, otherwise `new_swarm_id(S)`
/// is inserted. The generator and `new_swarm_id` are the library's.
fn new_id_sequence(input: &Input) -> Result<Output, CheckError> {
    let seed = input.u64("seed")?;
    let steps =
        u64::try_from(input.int("steps")?).map_err(|_| Malformed::new("steps", "must be ≥ 0"))?;
    let mut indices = Vec::new();
    for v in input.array("indices")? {
        let i = v
            .as_u64()
            .ok_or_else(|| Malformed::new("indices", "entries must be non-negative integers"))?;
        indices.push(i);
    }
    let mut rng = SwarmRng::new(seed);
    let mut set: Vec<SwarmId> = Vec::new();
    for _ in 0..steps {
        let r = rng.next_u64();
        if r < 1 << 62 {
            if set.is_empty() {
                return Err(CheckError::refused("removal from an empty set"));
            }
            let len = set.len() as u64;
            // r mod |S| < |S|, which fits in usize.
            set.remove((r % len) as usize);
        } else {
            let id = new_swarm_id(&set).map_err(CheckError::refused)?;
            if let Err(at) = set.binary_search(&id) {
                set.insert(at, id);
            }
        }
    }
    let mut ids_at = Map::new();
    for i in indices {
        let id = usize::try_from(i)
            .ok()
            .and_then(|i| set.get(i))
            .ok_or_else(|| {
                CheckError::refused(format!("index {i} is past the end ({} ids)", set.len()))
            })?;
        ids_at.insert(i.to_string(), dec(id.get()));
    }
    let mut m = Map::new();
    m.insert("count".into(), Value::from(set.len()));
    m.insert("ids_at".into(), Value::Object(ids_at));
    Ok(m)
}
