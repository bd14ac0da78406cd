//! Text a client sends that has a rule: titles, file URLs, names, email
//! addresses. Each is trimmed, checked, and kept as it will be stored.

use std::ops::Deref;

use url::Url;

use crate::error::AppError;

/// A source title: 1–500 characters once trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    pub fn parse(raw: &str) -> Result<Title, AppError> {
        let title = raw.trim();
        match title.chars().count() {
            1..=500 => Ok(Title(title.to_owned())),
            _ => Err(AppError::validation("title", "must be 1-500 characters")),
        }
    }
}

/// A file URL: an absolute http(s) URL of at most 2,048 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUrl(String);

impl FileUrl {
    pub fn parse(raw: &str) -> Result<FileUrl, AppError> {
        let raw = raw.trim();
        if raw.chars().count() > 2048 {
            return Err(AppError::validation(
                "fileUrl",
                "must be at most 2048 characters",
            ));
        }
        match Url::parse(raw) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
                Ok(FileUrl(raw.to_owned()))
            }
            _ => Err(AppError::validation("fileUrl", "must be an http(s) URL")),
        }
    }
}

/// A display name (of a user or a vault): 1–200 characters once trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    /// `field` names the field in the 422.
    pub fn parse(field: &'static str, raw: &str) -> Result<Name, AppError> {
        let name = raw.trim();
        match name.chars().count() {
            1..=200 => Ok(Name(name.to_owned())),
            _ => Err(AppError::validation(field, "must be 1-200 characters")),
        }
    }
}

/// An e-mail as accounts are told apart: trimmed, composed (NFC, so that
/// `Ä` typed as one character or as `A` and a combining diaeresis is the
/// same) and case-folded (Unicode full case folding, so `Äda@example.org`
/// and `äda@EXAMPLE.org` are one account on every backend, which SQL's
/// `lower()` is not on SQLite), then composed again.
pub fn fold_email(raw: &str) -> String {
    let nfc = icu_normalizer::ComposingNormalizer::new_nfc();
    let composed = nfc.normalize(raw.trim());
    let folded = icu_casemap::CaseMapper::new().fold_string(&composed);
    nfc.normalize(&folded).to_string()
}

/// An email address: at most 254 bytes once trimmed, no white space,
/// `local@domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, AppError> {
        let email = raw.trim();
        let well_formed = email.len() <= 254
            && !email.chars().any(char::is_whitespace)
            && email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
        if well_formed {
            Ok(Email(email.to_owned()))
        } else {
            Err(AppError::validation("email", "must be an email address"))
        }
    }

    /// The e-mail as accounts are told apart ([`fold_email`]).
    pub fn folded(&self) -> String {
        fold_email(&self.0)
    }
}

macro_rules! as_text {
    ($($name:ident),*) => {$(
        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }
    )*};
}

as_text!(Title, FileUrl, Name, Email);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_and_urls_are_validated() {
        assert_eq!(&*Title::parse("  A paper ").unwrap(), "A paper");
        assert!(Title::parse(" ").is_err());
        assert!(Title::parse(&"é".repeat(500)).is_ok());
        assert!(Title::parse(&"é".repeat(501)).is_err());
        assert!(FileUrl::parse("https://example.org/a.pdf").is_ok());
        assert!(FileUrl::parse("ftp://example.org/a.pdf").is_err());
        assert!(FileUrl::parse("javascript:alert(1)").is_err());
        assert!(FileUrl::parse("not a url").is_err());
        let long = format!("https://example.org/{}", "a".repeat(2040));
        assert!(FileUrl::parse(&long).is_err());
    }

    #[test]
    fn emails_and_names_are_validated() {
        assert_eq!(&*Email::parse(" a@b.c ").unwrap(), "a@b.c");
        assert!(Email::parse("nope").is_err());
        assert!(Email::parse("a b@c").is_err());
        assert!(Name::parse("name", "  ").is_err());
        assert!(Name::parse("name", &"x".repeat(201)).is_err());
        assert_eq!(&*Name::parse("name", " Ada ").unwrap(), "Ada");
    }

    #[test]
    fn emails_fold_beyond_ascii() {
        assert_eq!(fold_email(" Äda@Example.ORG "), "äda@example.org");
        assert_eq!(fold_email("äda@example.org"), fold_email("ÄDA@EXAMPLE.ORG"));
        assert_eq!(fold_email("Straße@x.de"), fold_email("STRASSE@x.de"));
        assert_eq!(
            fold_email("A\u{308}da@example.org"),
            fold_email("Äda@example.org"),
            "decomposed and composed"
        );
        let email = Email::parse("Ωmega@x.org").unwrap();
        assert_eq!(email.folded(), "ωmega@x.org");
    }
}
