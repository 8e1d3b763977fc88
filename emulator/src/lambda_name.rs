//! Lambda's `FunctionName` forms: `my-fn`, `my-fn:prod`, a full ARN
//! `arn:aws:lambda:us-east-1:123456789012:function:my-fn[:prod]` and a partial ARN
//! `123456789012:function:my-fn[:prod]`; and how a qualifier in the name combines with
//! `?Qualifier=`.

/// A parsed `FunctionName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    /// The bare function name.
    pub name: String,
    /// The version or alias given in the name, if any.
    pub qualifier: Option<String>,
}

/// Parses `given`, or says why it is not a function name (for a `ValidationException`).
pub fn parse(given: &str) -> Result<FunctionRef, String> {
    let parts: Vec<&str> = given.split(':').collect();
    let (name, qualifier) = match parts.as_slice() {
        [name] => (*name, None),
        [name, qualifier] => (*name, Some(*qualifier)),
        [account, "function", name] if is_account(account) => (*name, None),
        [account, "function", name, qualifier] if is_account(account) => (*name, Some(*qualifier)),
        [
            "arn",
            partition,
            "lambda",
            region,
            account,
            "function",
            name,
            rest @ ..,
        ] if partition.starts_with("aws")
            && !region.is_empty()
            && is_account(account)
            && rest.len() <= 1 =>
        {
            (*name, rest.first().copied())
        }
        _ => return Err(format!("'{given}' is not a function name, alias or ARN")),
    };
    if name.is_empty() || !name.bytes().all(is_name_byte) {
        return Err(format!("'{name}' is not a valid function name"));
    }
    if let Some(q) = qualifier
        && !is_qualifier(q)
    {
        return Err(format!("'{q}' is not a valid version or alias"));
    }
    Ok(FunctionRef {
        name: name.to_owned(),
        qualifier: qualifier.map(str::to_owned),
    })
}

/// The qualifier to invoke: the one in the name, `?Qualifier=`, or none. When both are
/// given they must agree (Lambda answers `InvalidParameterValueException` otherwise,
/// with the message returned here).
pub fn qualifier(
    function: &FunctionRef,
    query: Option<String>,
) -> Result<Option<String>, &'static str> {
    match (&function.qualifier, query) {
        (Some(derived), Some(given)) if *derived != given => Err(
            "The derived qualifier from the function name does not match the specified qualifier.",
        ),
        (Some(derived), _) => Ok(Some(derived.clone())),
        (None, given) => Ok(given),
    }
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

/// `$LATEST`, `$LATEST.PUBLISHED`, or `[A-Za-z0-9_-]+` (a version number or an alias).
fn is_qualifier(s: &str) -> bool {
    matches!(s, "$LATEST" | "$LATEST.PUBLISHED")
        || (!s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(name: &str, qualifier: Option<&str>) -> Result<FunctionRef, String> {
        Ok(FunctionRef {
            name: name.to_owned(),
            qualifier: qualifier.map(str::to_owned),
        })
    }

    #[test]
    fn every_documented_form() {
        assert_eq!(parse("my-fn"), ok("my-fn", None));
        assert_eq!(parse("my-fn:prod"), ok("my-fn", Some("prod")));
        assert_eq!(parse("my-fn:$LATEST"), ok("my-fn", Some("$LATEST")));
        assert_eq!(parse("123456789012:function:my-fn"), ok("my-fn", None));
        assert_eq!(
            parse("123456789012:function:my-fn:7"),
            ok("my-fn", Some("7"))
        );
        assert_eq!(
            parse("arn:aws:lambda:us-east-1:123456789012:function:my-fn"),
            ok("my-fn", None)
        );
        assert_eq!(
            parse("arn:aws-cn:lambda:cn-north-1:123456789012:function:my-fn:prod"),
            ok("my-fn", Some("prod"))
        );
    }

    #[test]
    fn malformed_names() {
        for bad in [
            "",
            "my fn",
            "a:b:c",
            "my-fn:",
            "my-fn:pr/od",
            "12345:function:my-fn",
            "arn:aws:s3:us-east-1:123456789012:function:my-fn",
            "arn:aws:lambda:us-east-1:123456789012:function:my-fn:prod:extra",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn qualifiers_combine() {
        let plain = parse("my-fn").expect("valid");
        let aliased = parse("my-fn:prod").expect("valid");
        assert_eq!(qualifier(&plain, None), Ok(None));
        assert_eq!(qualifier(&plain, Some("3".into())), Ok(Some("3".into())));
        assert_eq!(qualifier(&aliased, None), Ok(Some("prod".into())));
        assert_eq!(
            qualifier(&aliased, Some("prod".into())),
            Ok(Some("prod".into()))
        );
        assert!(qualifier(&aliased, Some("3".into())).is_err());
    }
}
