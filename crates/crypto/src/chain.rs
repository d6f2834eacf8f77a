//! The step of the audit log's hash chain (AU-5): each entry's hash covers the previous entry's
//! hash and the entry's canonical encoding, so changing, removing or reordering an entry breaks
//! every later link.

use ring::digest::{Context, SHA256};

pub type ChainHash = [u8; 32];

/// The "previous hash" of the first entry of a chain.
pub const CHAIN_GENESIS: ChainHash = [0u8; 32];

const DOMAIN: &[u8] = b"rekisteri/audit-chain/v1\0";

pub fn chain_step(previous: &ChainHash, canonical_entry: &[u8]) -> ChainHash {
    let mut context = Context::new(&SHA256);
    context.update(DOMAIN);
    context.update(previous);
    context.update(canonical_entry);
    let mut out = [0u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::to_hex;

    #[test]
    fn chain_step_is_sha256_over_domain_previous_and_entry() {
        // Computed independently: sha256(b"rekisteri/audit-chain/v1\0" + 32 zero bytes + b"entry")
        let hash = chain_step(&CHAIN_GENESIS, b"entry");
        let mut input = DOMAIN.to_vec();
        input.extend_from_slice(&[0u8; 32]);
        input.extend_from_slice(b"entry");
        assert_eq!(hash.as_slice(), ring::digest::digest(&SHA256, &input).as_ref());
        assert_ne!(chain_step(&hash, b"a"), chain_step(&CHAIN_GENESIS, b"a"));
        assert_eq!(to_hex(&hash).len(), 64);
    }

    #[test]
    fn sha256_known_answer() {
        // FIPS 180-2 example "abc".
        let d = ring::digest::digest(&SHA256, b"abc");
        assert_eq!(
            to_hex(d.as_ref()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
