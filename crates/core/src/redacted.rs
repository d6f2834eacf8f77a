//! `Debug` for types that hold personal data (identity codes, names, next of kin): it names the
//! type and the fields that are safe to print (ids, versions), never the rest, so a `{:?}` in a
//! log line, an error or a panic message cannot carry a person's data out (issue 23 point 6).
//! `crates/core/tests/personal_debug.rs` fails on a type with such a field that derives `Debug`.

/// Implements `Debug` for `$type` printing only the listed fields, then `..`:
/// `redacted_debug!(Client { id, version });` prints `Client { id: "…", version: 3, .. }`.
#[macro_export]
macro_rules! redacted_debug {
    ($type:ident { $($field:ident),* $(,)? }) => {
        impl ::std::fmt::Debug for $type {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($type))
                    $(.field(stringify!($field), &self.$field))*
                    .finish_non_exhaustive()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    struct Person {
        id: u32,
        identity_code: String,
    }
    redacted_debug!(Person { id });

    #[test]
    fn only_the_listed_fields_are_printed() {
        let person = Person {
            id: 7,
            identity_code: "131052-308T".to_owned(),
        };
        assert_eq!(format!("{person:?}"), "Person { id: 7, .. }");
        assert_eq!(person.identity_code.len(), 11);
    }
}
