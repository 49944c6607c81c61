//! Why a Dockerfile is refused. Messages are docker's (BuildKit's dockerfile frontend) where
//! docker has one, so a user sees the same sentence from `wharf build` as from `docker build`.

use wharf_types::error::HasKind;
use wharf_types::ErrorKind;

/// A refused Dockerfile: too large, or a syntax error with its line (1-based, the first line
/// of the instruction) and, where it means something, the column (1-based, in characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerfileError {
    #[error("dockerfile is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("dockerfile parse error on line {line}: {error}")]
    Syntax {
        line: usize,
        column: Option<usize>,
        error: SyntaxError,
    },
}

impl DockerfileError {
    /// The line the error is on, when it has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            DockerfileError::Syntax { line, .. } => Some(*line),
            DockerfileError::TooLarge { .. } => None,
        }
    }
}

impl HasKind for DockerfileError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// What is wrong on a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("line is {len} bytes, over the limit of {limit} bytes")]
    LineTooLong { len: usize, limit: usize },
    #[error("line is not valid utf-8")]
    NotUtf8,
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscape(String),
    #[error("file with no instructions")]
    NoInstructions,
    #[error("unterminated heredoc")]
    UnterminatedHeredoc,
    #[error("more than {0} heredocs on one line")]
    TooManyHeredocs(usize),
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    #[error("unknown instruction: {0}")]
    UnknownInstruction(String),
    #[error("unknown flag: {0}")]
    UnknownFlag(String),
    #[error("arg should start with -- : {0}")]
    FlagNoDashes(String),
    #[error("duplicate flag specified: {0}")]
    DuplicateFlag(String),
    #[error("missing a value on flag: {0}")]
    FlagMissingValue(String),
    #[error("expecting boolean value for flag {flag}, not: {value}")]
    FlagNotBool { flag: String, value: String },
    #[error("{0} requires at least one argument")]
    AtLeastOneArgument(&'static str),
    #[error("{0} requires exactly one argument")]
    ExactlyOneArgument(&'static str),
    #[error("{0} requires at least two arguments, but only one was provided. Destination could not be determined.")]
    NoDestination(&'static str),
    #[error("{0} must have two arguments")]
    TwoArguments(&'static str),
    #[error("Syntax error - can't find = in {0:?}. Must be of the form: name=value")]
    NoEquals(String),
    #[error("{0} names can not be blank")]
    BlankName(&'static str),
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    #[error(
        "invalid name for build stage: {0:?}, name can't start with a number or contain symbols"
    )]
    StageName(String),
    #[error("{0} requires the arguments to be in JSON form")]
    NotJson(&'static str),
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArguments,
    #[error("Missing command after HEALTHCHECK CMD")]
    HealthcheckMissingCommand,
    #[error("Unknown type {0:?} in HEALTHCHECK (try CMD)")]
    HealthcheckType(String),
    /// Go's `time.ParseDuration` error, as docker prints it (without the flag's name).
    #[error("{error}")]
    HealthcheckDuration {
        flag: String,
        error: wharf_types::parse::ParseError,
    },
    #[error("Interval {0:?} cannot be less than 1ms")]
    IntervalTooShort(String),
    #[error("strconv.ParseInt: parsing {0:?}: invalid syntax")]
    Retries(String),
    #[error("strconv.ParseInt: parsing {0:?}: value out of range")]
    RetriesRange(String),
    #[error("--retries cannot be negative ({0})")]
    NegativeRetries(i64),
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChain,
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger(String),
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    #[error("{0} cannot accept a heredoc as a destination")]
    HeredocDestination(&'static str),
    #[error("unexpected key '{key}' in '{field}'")]
    MountKey { key: String, field: String },
    #[error("invalid value for {key}: {value}")]
    MountValue { key: String, value: String },
    #[error("unsupported mount type {0:?}")]
    MountType(String),
    #[error("mount type={0} requires a target")]
    MountTarget(&'static str),
    #[error("unsupported sharing value {0:?}")]
    MountSharing(String),
    #[error("option {key} is not supported for mount type={kind}")]
    MountOption { key: String, kind: &'static str },
    #[error("unsupported network mode {0:?}")]
    NetworkMode(String),
    #[error("unsupported security mode {0:?}")]
    SecurityMode(String),
}
