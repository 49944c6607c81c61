//! An instruction's `--flags`, as BuildKit's `BFlags`: each instruction declares the flags it
//! takes (bool, string, or repeatable strings); anything else is `unknown flag: x`.

use super::SyntaxError;

#[derive(Clone, Copy, PartialEq)]
pub(super) enum FlagType {
    Bool,
    String,
    Strings,
}

pub(super) struct Flags {
    declared: Vec<(&'static str, FlagType)>,
    values: Vec<(&'static str, String)>,
}

impl Flags {
    pub fn new(declared: &[(&'static str, FlagType)]) -> Self {
        Flags {
            declared: declared.to_vec(),
            values: Vec::new(),
        }
    }

    /// Parses the words `extract_flags` found. Errors carry the flag's name.
    pub fn parse(mut self, words: &[String]) -> Result<Self, SyntaxError> {
        for w in words {
            let Some(arg) = w.strip_prefix("--") else {
                return Err(SyntaxError::FlagNoDashes(w.clone()));
            };
            if arg.is_empty() {
                break;
            }
            let (name, value) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (arg, None),
            };
            let Some(&(name, typ)) = self.declared.iter().find(|(n, _)| *n == name) else {
                return Err(SyntaxError::UnknownFlag(name.to_string()));
            };
            if typ != FlagType::Strings && self.values.iter().any(|(n, _)| *n == name) {
                return Err(SyntaxError::DuplicateFlag(name.to_string()));
            }
            let value = match typ {
                FlagType::Bool => match value.map(str::to_ascii_lowercase).as_deref() {
                    None | Some("") | Some("true") => "true".to_string(),
                    Some("false") => "false".to_string(),
                    Some(_) => {
                        return Err(SyntaxError::FlagNotBool {
                            flag: name.to_string(),
                            value: value.unwrap_or_default().to_string(),
                        })
                    }
                },
                FlagType::String | FlagType::Strings => match value {
                    Some(v) => v.to_string(),
                    None => return Err(SyntaxError::FlagMissingValue(name.to_string())),
                },
            };
            self.values.push((name, value));
        }
        Ok(self)
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }

    pub fn strings(&self, name: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// `Some` when the flag was given.
    pub fn bool_opt(&self, name: &str) -> Option<bool> {
        self.string(name).map(|v| v == "true")
    }

    pub fn bool(&self, name: &str) -> bool {
        self.bool_opt(name).unwrap_or(false)
    }
}
