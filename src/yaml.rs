//! Reading a YAML document into a serde type, reporting *every* structural problem at once:
//! unknown keys, duplicate keys, wrong types and missing fields, each with its key path and line.
//!
//! serde stops at the first error. To find the next one the document is read into a tree, the
//! value at fault is replaced by a stand-in of a type that reads (an unknown key is removed), and
//! the tree is read again, until it reads cleanly. The tree keeps no lines, so each problem's
//! line is found by walking its key path once more through the original text. Only a YAML
//! syntax error is reported alone: nothing after it can be read.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IgnoredAny, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Value};

/// Reads of the tree before giving up on finding more problems; each problem takes one to a
/// handful, so this is far beyond any real file.
const MAX_ROUNDS: usize = 1000;

/// One step of a key path: a mapping key or a list index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Where a value sits in the document, written as `kernels[0].shapes[1]`; empty for the root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KeyPath(pub Vec<Step>);

impl KeyPath {
    fn child(&self, step: Step) -> KeyPath {
        let mut steps = self.0.clone();
        steps.push(step);
        KeyPath(steps)
    }

    fn parent(&self) -> Option<(KeyPath, &Step)> {
        let (last, rest) = self.0.split_last()?;
        Some((KeyPath(rest.to_vec()), last))
    }

    fn starts_with(&self, prefix: &KeyPath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(key) if i == 0 => write!(f, "{key}")?,
                Step::Key(key) => write!(f, ".{key}")?,
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// A structural problem: the message is serde's, without its own location and path.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: KeyPath,
    /// 1-based, where the value (or, for an unknown or repeated key, the key) starts.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.path.is_root() {
            write!(f, "`{}`: ", self.path)?;
        }
        write!(f, "{}", self.message)
    }
}

/// What [`parse`] found.
#[derive(Debug)]
pub enum Parsed<T> {
    Valid(T),
    Invalid {
        /// In document order.
        problems: Vec<Problem>,
        /// The document with a stand-in for every value at fault, and where the stand-ins
        /// are, so that checks of the parts that did read can still run. `None` after a syntax
        /// error, or when no stand-in fitted.
        stand_in: Option<(T, Vec<KeyPath>)>,
    },
}

/// Reads `text` strictly as a `T`; when that fails, finds every structural problem.
///
/// A UTF-8 byte-order mark at the start is skipped: editors on Windows write one, and YAML
/// parsers would otherwise take it as part of the first key.
pub fn parse<T: DeserializeOwned>(text: &str) -> Parsed<T> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = match read::<T>(text) {
        Ok(value) => return Parsed::Valid(value),
        Err(failure) => failure,
    };
    let alone = |failure: Failure| Parsed::Invalid {
        problems: vec![Problem {
            path: failure.path.unwrap_or_default(),
            line: failure.line,
            message: failure.message,
        }],
        stand_in: None,
    };
    let duplicates = RefCell::new(Vec::new());
    let build = Build {
        path: KeyPath::default(),
        duplicates: &duplicates,
    };
    // A syntax error: the tree cannot be built, and nothing past the error can be read.
    let Ok(tree) = build.deserialize(serde_yaml::Deserializer::from_str(text)) else {
        return alone(first);
    };
    let (mut problems, stand_in) = collect::<T>(text, tree, duplicates.into_inner());
    if problems.is_empty() {
        // The tree read differently from the text (it should not): report what serde said.
        return alone(first);
    }
    problems.sort_by_key(|problem| problem.line.unwrap_or(usize::MAX));
    Parsed::Invalid { problems, stand_in }
}

/// A failed strict read: where, and serde's message.
struct Failure {
    /// `None` when serde could not say (a path through something it does not track).
    path: Option<KeyPath>,
    line: Option<usize>,
    message: String,
}

fn read<T: DeserializeOwned>(text: &str) -> Result<T, Failure> {
    let deserializer = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = key_path(err.path());
        let inner = err.into_inner();
        Failure {
            path,
            line: inner.location().map(|at| at.line()),
            message: bare_message(&inner.to_string(), inner.location().is_some()),
        }
    })
}

fn key_path(path: &serde_path_to_error::Path) -> Option<KeyPath> {
    use serde_path_to_error::Segment;
    path.iter()
        .map(|segment| match segment {
            Segment::Seq { index } => Some(Step::Index(*index)),
            Segment::Map { key } => Some(Step::Key(key.clone())),
            Segment::Enum { variant } => Some(Step::Key(variant.clone())),
            Segment::Unknown => None,
        })
        .collect::<Option<Vec<_>>>()
        .map(KeyPath)
}

/// serde_yaml's message without what the problem carries separately: its location and its own
/// (coarser) key path.
fn bare_message(message: &str, has_location: bool) -> String {
    let mut message = message.to_string();
    if has_location {
        if let Some(cut) = message.rfind(" at line ") {
            message.truncate(cut);
        }
    }
    if let Some((prefix, rest)) = message.split_once(": ") {
        if !prefix.contains(' ') {
            message = rest.to_string();
        }
    }
    message
}

/// How a read failure is taken out of the tree before the next read.
enum Fix {
    /// An unknown key: remove it.
    Remove,
    /// A value of the wrong type, or a missing one: put a stand-in there.
    StandIn,
}

/// Reads the tree again and again, recording each failure and masking it, until it reads.
fn collect<T: DeserializeOwned>(
    text: &str,
    mut tree: Value,
    duplicates: Vec<(KeyPath, String)>,
) -> (Vec<Problem>, Option<(T, Vec<KeyPath>)>) {
    let mut problems: Vec<Problem> = duplicates
        .into_iter()
        .map(|(path, key)| Problem {
            line: locate(text, &path, Some((&key, 1))),
            message: format!("duplicate key `{key}`"),
            path,
        })
        .collect();
    let mut stand_ins: Vec<KeyPath> = Vec::new();
    let mut tried: HashMap<KeyPath, Vec<Value>> = HashMap::new();
    for _ in 0..MAX_ROUNDS {
        let Ok(yaml) = serde_yaml::to_string(&tree) else {
            break;
        };
        let failure = match read::<T>(&yaml) {
            Ok(value) => return (problems, Some((value, stand_ins))),
            Err(failure) => failure,
        };
        let Some(path) = failure.path else { break };
        // What to mask, and where the problem shows in the text: an unknown key at the key, a
        // missing one at its mapping, a wrong value at the value.
        let (target, fix, shown_at) =
            if let Some(key) = quoted_after(&failure.message, "unknown field `") {
                let Some((parent, _)) = path.parent() else {
                    break;
                };
                (path.clone(), Fix::Remove, (parent, Some((key, 0))))
            } else if let Some(key) = quoted_after(&failure.message, "missing field `") {
                let target = path.child(Step::Key(key.to_string()));
                (target, Fix::StandIn, (path.clone(), None))
            } else {
                (path.clone(), Fix::StandIn, (path.clone(), None))
            };
        // A failure inside a stand-in is the stand-in's own: it is fixed, not reported.
        if !stand_ins.iter().any(|m| target.starts_with(m)) {
            problems.push(Problem {
                line: locate(text, &shown_at.0, shown_at.1),
                message: failure.message.clone(),
                path,
            });
        }
        let applied = match fix {
            Fix::Remove => remove(&mut tree, &target),
            Fix::StandIn => {
                let tried = tried.entry(target.clone()).or_default();
                let Some(candidate) = stand_in_candidates(&failure.message)
                    .into_iter()
                    .find(|c| !tried.contains(c))
                else {
                    break;
                };
                tried.push(candidate.clone());
                if !stand_ins.contains(&target) {
                    stand_ins.push(target.clone());
                }
                set(&mut tree, &target, candidate)
            }
        };
        if !applied {
            break;
        }
    }
    (problems, None)
}

/// The name in backticks right after `prefix` in a serde message.
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let start = message.find(prefix)? + prefix.len();
    let rest = &message[start..];
    rest.find('`').map(|end| &rest[..end])
}

/// Values to try in place of one that did not read, most likely first: for an enum, a variant
/// the message names; then one of each YAML kind (a number reads as a string too).
fn stand_in_candidates(message: &str) -> Vec<Value> {
    let variant = quoted_after(message, "expected one of `")
        .or_else(|| quoted_after(message, "expected `"))
        .map(|name| Value::String(name.to_string()));
    variant
        .into_iter()
        .chain([
            Value::Sequence(Vec::new()),
            Value::Mapping(Mapping::new()),
            Value::Number(1.into()),
            Value::Sequence(vec![Value::Number(0.into()), Value::Number(1.into())]),
            Value::String("x".to_string()),
            Value::Bool(true),
            Value::Null,
        ])
        .collect()
}

fn key_name(key: &Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn get_mut<'v>(tree: &'v mut Value, path: &KeyPath) -> Option<&'v mut Value> {
    let mut node = tree;
    for step in &path.0 {
        node = match (step, node) {
            (Step::Key(key), Value::Mapping(map)) => map
                .iter_mut()
                .find(|(k, _)| key_name(k).as_deref() == Some(key))
                .map(|(_, v)| v)?,
            (Step::Index(index), Value::Sequence(items)) => items.get_mut(*index)?,
            (step, Value::Tagged(tagged)) => {
                get_mut(&mut tagged.value, &KeyPath(vec![step.clone()]))?
            }
            _ => return None,
        };
    }
    Some(node)
}

fn set(tree: &mut Value, path: &KeyPath, value: Value) -> bool {
    let Some((parent, last)) = path.parent() else {
        *tree = value;
        return true;
    };
    match (last, get_mut(tree, &parent)) {
        (Step::Key(key), Some(Value::Mapping(map))) => {
            let existing = map
                .keys()
                .find(|k| key_name(k).as_deref() == Some(key))
                .cloned();
            map.insert(
                existing.unwrap_or_else(|| Value::String(key.clone())),
                value,
            );
            true
        }
        (Step::Index(index), Some(Value::Sequence(items))) if *index < items.len() => {
            items[*index] = value;
            true
        }
        _ => false,
    }
}

fn remove(tree: &mut Value, path: &KeyPath) -> bool {
    let Some((parent, Step::Key(key))) = path.parent() else {
        return false;
    };
    let Some(Value::Mapping(map)) = get_mut(tree, &parent) else {
        return false;
    };
    let before = map.len();
    map.retain(|k, _| key_name(k).as_deref() != Some(key));
    map.len() < before
}

/// Builds the tree, keeping the first of repeated keys and noting the others: YAML forbids
/// them, and serde_yaml's own tree would stop at the first.
struct Build<'a> {
    path: KeyPath,
    duplicates: &'a RefCell<Vec<(KeyPath, String)>>,
}

impl<'de> DeserializeSeed<'de> for Build<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Build<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let element = Build {
                path: self.path.child(Step::Index(items.len())),
                duplicates: self.duplicates,
            };
            match seq.next_element_seed(element)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Sequence(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut mapping = Mapping::new();
        while let Some(key) = map.next_key::<Value>()? {
            let name = key_name(&key).unwrap_or_default();
            if mapping.contains_key(&key) {
                self.duplicates.borrow_mut().push((self.path.clone(), name));
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value = map.next_value_seed(Build {
                path: self.path.child(Step::Key(name)),
                duplicates: self.duplicates,
            })?;
            mapping.insert(key, value);
        }
        Ok(Value::Mapping(mapping))
    }

    /// A value with a YAML tag (`!name value`).
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (tag, variant): (String, _) = data.variant()?;
        let value = variant.newtype_variant_seed(self)?;
        Ok(Value::Tagged(Box::new(TaggedValue {
            tag: Tag::new(tag),
            value,
        })))
    }
}

/// Marks the error [`Find`] raises on arriving, so it is told from a real one.
const FOUND: &str = "gatekeeper: found the key path";

/// The line where the value at `path` starts in `text`; with `key`, where the `nth` (from 0)
/// occurrence of that key of the mapping at `path` starts. serde_yaml attaches the position of
/// the value being read to an error raised while reading it, so the walk raises one on arrival.
fn locate(text: &str, path: &KeyPath, key: Option<(&str, usize)>) -> Option<usize> {
    let find = Find {
        steps: &path.0,
        key,
    };
    match find.deserialize(serde_yaml::Deserializer::from_str(text)) {
        Err(err) if err.to_string().contains(FOUND) => err.location().map(|at| at.line()),
        _ => None,
    }
}

#[derive(Clone, Copy)]
struct Find<'a> {
    steps: &'a [Step],
    key: Option<(&'a str, usize)>,
}

impl Find<'_> {
    fn arrived<E: de::Error>(&self) -> Result<(), E> {
        if self.steps.is_empty() && self.key.is_none() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}

impl<'de> DeserializeSeed<'de> for Find<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Find<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.arrived()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.arrived()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.arrived()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.arrived()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.arrived()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.arrived()
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.arrived()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.arrived()?;
        if let Some((Step::Index(index), rest)) = self.steps.split_first() {
            for _ in 0..*index {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    return Ok(());
                }
            }
            let inner = Find {
                steps: rest,
                key: self.key,
            };
            seq.next_element_seed(inner)?;
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.arrived()?;
        match (self.steps.split_first(), self.key) {
            (Some((Step::Key(wanted), rest)), _) => {
                while let Some(key) = map.next_key::<Value>()? {
                    if key_name(&key).as_deref() == Some(wanted) {
                        let inner = Find {
                            steps: rest,
                            key: self.key,
                        };
                        map.next_value_seed(inner)?;
                        break;
                    }
                    map.next_value::<IgnoredAny>()?;
                }
            }
            (None, Some((wanted, nth))) => {
                let seen = Cell::new(0);
                while map
                    .next_key_seed(FindKey {
                        wanted,
                        nth,
                        seen: &seen,
                    })?
                    .is_some()
                {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            _ => {}
        }
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let (IgnoredAny, variant) = data.variant()?;
        variant.newtype_variant_seed(self)
    }
}

/// A mapping key that raises [`FOUND`] when it is the `nth` occurrence of `wanted`.
struct FindKey<'a> {
    wanted: &'a str,
    nth: usize,
    seen: &'a Cell<usize>,
}

impl<'de> DeserializeSeed<'de> for FindKey<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        // Raised inside the key's own read, so the error carries the key's position.
        deserializer.deserialize_any(self)
    }
}

impl FindKey<'_> {
    fn check<E: de::Error>(&self, key: &str) -> Result<(), E> {
        if key == self.wanted {
            if self.seen.get() == self.nth {
                return Err(E::custom(FOUND));
            }
            self.seen.set(self.seen.get() + 1);
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for FindKey<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<(), E> {
        self.check(key)
    }

    fn visit_bool<E: de::Error>(self, key: bool) -> Result<(), E> {
        self.check(&key.to_string())
    }

    fn visit_i64<E: de::Error>(self, key: i64) -> Result<(), E> {
        self.check(&key.to_string())
    }

    fn visit_u64<E: de::Error>(self, key: u64) -> Result<(), E> {
        self.check(&key.to_string())
    }

    fn visit_f64<E: de::Error>(self, key: f64) -> Result<(), E> {
        self.check(&serde_yaml::Number::from(key).to_string())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        count: u32,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        size: u64,
        #[serde(default)]
        ratio: Option<f64>,
    }

    fn problems(text: &str) -> Vec<String> {
        match parse::<Doc>(text) {
            Parsed::Invalid { problems, .. } => problems.iter().map(|p| p.to_string()).collect(),
            Parsed::Valid(doc) => panic!("expected problems, read {doc:?}"),
        }
    }

    #[test]
    fn every_wrong_type_is_reported_with_its_line() {
        let text = "name: [a]\ncount: many\nitems:\n  - size: big\n    ratio: high\n  - size: 3\n  - {size: -1}\n";
        assert_eq!(
            problems(text),
            [
                "line 1: `name`: invalid type: sequence, expected a string",
                "line 2: `count`: invalid type: string \"many\", expected u32",
                "line 4: `items[0].size`: invalid type: string \"big\", expected u64",
                "line 5: `items[0].ratio`: invalid type: string \"high\", expected f64",
                "line 7: `items[2].size`: invalid type: integer `-1`, expected u64",
            ]
        );
    }

    #[test]
    fn unknown_duplicate_and_missing_keys_are_all_reported() {
        let text = "name: a\nname: b\ncolour: red\nitems:\n  - ratio: 1\n    shade: blue\n";
        let found = problems(text);
        assert_eq!(found.len(), 5, "{found:#?}");
        assert_eq!(found[0], "line 1: missing field `count`");
        assert_eq!(found[1], "line 2: duplicate key `name`");
        assert!(found[2].starts_with("line 3: `colour`: unknown field `colour`"));
        assert_eq!(found[3], "line 5: `items[0]`: missing field `size`");
        assert!(found[4].starts_with("line 6: `items[0].shade`: unknown field `shade`"));
    }

    #[test]
    fn stand_ins_let_the_rest_be_read() {
        let Parsed::Invalid { stand_in, .. } =
            parse::<Doc>("name: a\ncount: x\nitems: [{size: 2}]\n")
        else {
            panic!("expected problems");
        };
        let (doc, stand_ins) = stand_in.unwrap();
        assert_eq!(doc.items[0].size, 2);
        assert_eq!(stand_ins, [KeyPath(vec![Step::Key("count".into())])]);
    }

    #[test]
    fn a_syntax_error_is_reported_alone() {
        let found = problems("name: a\ncount: [1\nitems: {]\n");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].starts_with("line "), "{found:?}");
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let doc = parse::<Doc>("\u{feff}name: a\ncount: 1\n");
        assert!(
            matches!(doc, Parsed::Valid(Doc { count: 1, .. })),
            "{doc:?}"
        );
    }

    #[test]
    fn lines_follow_aliases_to_their_anchor() {
        let text = "base: &b {size: x}\nname: a\ncount: 1\nitems: [*b]\n";
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct WithBase {
            base: serde_yaml::Value,
            name: String,
            count: u32,
            items: Vec<Item>,
        }
        let Parsed::Invalid { problems, .. } = parse::<WithBase>(text) else {
            panic!("expected problems");
        };
        assert_eq!(problems[0].to_string().split(':').next(), Some("line 1"));
    }
}
