//! Text value types: a `String` that can only be built valid, by the type's own
//! `parse`, and that serde reads back through the same check
//! (`#[serde(try_from = "String", into = "String")]`).

/// The impls every text value type shares: `as_str`, and the conversions serde uses,
/// which check through the type's `parse(&str) -> Result<Self, $error>`.
macro_rules! text_value {
    ($name:ident, $error:ty) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = $error;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

pub(crate) use text_value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("may not be blank")]
    Blank,
    #[error("may have at most {max} characters")]
    TooLong { max: usize },
    #[error("may not contain control characters")]
    ControlCharacter,
}

/// `input` trimmed, if it is at most `max_chars` characters with no control character
/// (and not blank, unless `allow_empty`).
pub(crate) fn clean_text(
    input: &str,
    max_chars: usize,
    allow_empty: bool,
) -> Result<String, TextError> {
    clean(input, max_chars, allow_empty, char::is_control)
}

/// As [`clean_text`], with line breaks allowed, and empty.
pub(crate) fn clean_lines(input: &str, max_chars: usize) -> Result<String, TextError> {
    clean(input, max_chars, true, |c| c.is_control() && c != '\n')
}

fn clean(
    input: &str,
    max_chars: usize,
    allow_empty: bool,
    refused: impl Fn(char) -> bool,
) -> Result<String, TextError> {
    let trimmed = input.trim();
    if trimmed.is_empty() && !allow_empty {
        return Err(TextError::Blank);
    }
    if trimmed.chars().count() > max_chars {
        return Err(TextError::TooLong { max: max_chars });
    }
    if trimmed.chars().any(refused) {
        return Err(TextError::ControlCharacter);
    }
    Ok(trimmed.to_owned())
}
