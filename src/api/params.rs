//! Typed parameters, one struct per loss, activation and normalization,
//! chosen by the name in the path (as mini-redis gives each command its own
//! type with its own parse).
//!
//! A parameter struct is declared with [`param_set!`]: each field with its
//! doc comment (the description the catalogue serves), its type and its
//! default. From that one declaration come the struct, its `Default`, its
//! deserialization (every field optional; absent or `null` is the default;
//! unknown fields refused) and its [`ParamSet`] entry, from which
//! `GET /loss`, `GET /activation` and `GET /normalize` list names, JSON types,
//! defaults and descriptions (in the shape of [`super::catalogue`]). Adding a parameter is one field in one struct.
//!
//! A request body holds the data fields of its route (the *envelope*:
//! `predictions` and `targets`, or `input`) beside the parameters of the named
//! operation, all at the top level. [`Body`] reads such a body in one pass,
//! without buffering: envelope keys go to the route's [`Envelope`], the named
//! operation's keys to its parameter struct, and a parameter of *another*
//! operation of the route is recorded in [`Body::foreign`] so the route can
//! answer with its own sentence ("beta is not a parameter of loss 'mse'"). A
//! key no operation takes is serde's "unknown field" error, naming every
//! field the route takes.

use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::catalogue::Parameter;
use super::tensor::Tensor;

/// One parameter as the catalogue lists it (its default comes from the
/// struct's `Default`, see [`ParamSet::catalogue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamDoc {
    pub name: &'static str,
    /// JSON type, as the catalogue writes it ("number", "nested array", ...).
    pub kind: &'static str,
    pub description: &'static str,
}

/// The JSON type of a parameter's Rust type, as the catalogue writes it.
pub trait JsonType {
    const NAME: &'static str;
}

impl JsonType for f64 {
    const NAME: &'static str = "number";
}

impl JsonType for i64 {
    const NAME: &'static str = "integer";
}

impl JsonType for u64 {
    const NAME: &'static str = "integer";
}

impl JsonType for usize {
    const NAME: &'static str = "integer";
}

impl JsonType for bool {
    const NAME: &'static str = "boolean";
}

impl JsonType for Vec<f64> {
    const NAME: &'static str = "array";
}

impl JsonType for Tensor {
    const NAME: &'static str = "nested array";
}

impl<T: JsonType> JsonType for Option<T> {
    const NAME: &'static str = T::NAME;
}

/// The number of elements of an array parameter (`None` for a scalar), so
/// every array a request carries is held to `--max-array-len`.
pub trait ArrayLen {
    fn array_len(&self) -> Option<usize> {
        None
    }
}

impl ArrayLen for f64 {}
impl ArrayLen for i64 {}
impl ArrayLen for u64 {}
impl ArrayLen for usize {}
impl ArrayLen for bool {}

impl ArrayLen for Vec<f64> {
    fn array_len(&self) -> Option<usize> {
        Some(self.len())
    }
}

impl ArrayLen for Tensor {
    fn array_len(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

impl<T: ArrayLen> ArrayLen for Option<T> {
    fn array_len(&self) -> Option<usize> {
        self.as_ref().and_then(ArrayLen::array_len)
    }
}

/// A parameter struct declared with [`param_set!`].
pub trait ParamSet: Default + Serialize + DeserializeOwned + Send + 'static {
    /// Every parameter, in declaration order.
    const DOCS: &'static [ParamDoc];

    /// `(name, elements)` of every array parameter that is present.
    fn array_lens(&self) -> Vec<(&'static str, usize)>;

    /// The parameter names, in declaration order.
    fn names() -> Vec<&'static str> {
        Self::DOCS.iter().map(|d| d.name).collect()
    }

    /// Every parameter as the catalogues list it, the defaults read from
    /// `Self::default()`.
    fn catalogue() -> Vec<Parameter> {
        let defaults = serde_json::to_value(Self::default()).unwrap_or(Value::Null);
        Self::DOCS
            .iter()
            .map(|d| Parameter {
                name: d.name,
                kind: d.kind,
                default: defaults.get(d.name).cloned().unwrap_or(Value::Null),
                description: d.description,
                values: None,
            })
            .collect()
    }
}

/// Declares a parameter struct: per field its doc comment (served as the
/// description), its type and `= default`. See the module docs.
macro_rules! param_set {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])+
                $field:ident: $ty:ty = $default:expr,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, serde::Serialize)]
        $vis struct $name {
            $( $(#[doc = $doc])+ pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            #[allow(unused_variables)]
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                /// Every field optional: absent or null means the default.
                #[derive(serde::Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Given {
                    $( #[serde(default)] $field: Option<$ty>, )*
                }
                let given = Given::deserialize(deserializer)?;
                let default = <$name as Default>::default();
                Ok($name { $( $field: given.$field.unwrap_or(default.$field), )* })
            }
        }

        impl $crate::api::params::ParamSet for $name {
            const DOCS: &'static [$crate::api::params::ParamDoc] = &[
                $( $crate::api::params::ParamDoc {
                    name: stringify!($field),
                    kind: <$ty as $crate::api::params::JsonType>::NAME,
                    description: concat!($($doc),+).trim_ascii(),
                }, )*
            ];

            #[allow(unused_mut)]
            fn array_lens(&self) -> Vec<(&'static str, usize)> {
                let mut lens = Vec::new();
                $(
                    if let Some(len) = $crate::api::params::ArrayLen::array_len(&self.$field) {
                        lens.push((stringify!($field), len));
                    }
                )*
                lens
            }
        }
    };
}

pub(crate) use param_set;

/// The keys a route takes, built once per route: every operation's
/// parameters, and those after the envelope's keys (the list serde's
/// "unknown field" error gives).
#[derive(Debug)]
pub struct RouteKeys {
    /// Every parameter of every operation, each once.
    pub params: Vec<&'static str>,
    /// The envelope's keys, then `params`.
    pub fields: Vec<&'static str>,
}

impl RouteKeys {
    /// The keys of a route whose envelope is `envelope` and whose operations
    /// take `params` (see [`union_of`]).
    pub fn new(envelope: &[&'static str], params: Vec<&'static str>) -> Self {
        let fields = envelope.iter().chain(&params).copied().collect();
        RouteKeys { params, fields }
    }

    /// `name` as a parameter of some operation of the route.
    fn param(&self, name: &str) -> Option<&'static str> {
        self.params.iter().copied().find(|p| *p == name)
    }
}

/// The data fields of a route's body (everything but the parameters), read
/// key by key as [`Body`] meets them.
pub trait Envelope: Default {
    /// The checked data, once every required field was read.
    type Data;
    /// What a body that is not an object is told it should be.
    const EXPECTING: &'static str;
    /// The envelope's keys.
    const FIELDS: &'static [&'static str];

    /// The route's keys (kept in a `static`, so built once).
    fn keys() -> &'static RouteKeys;

    /// Reads the value of `key` (one of [`Envelope::FIELDS`]).
    fn read<'de, A: MapAccess<'de>>(
        &mut self,
        key: &'static str,
        map: &mut A,
    ) -> Result<(), A::Error>;

    /// The data, or serde's "missing field" error.
    fn finish<E: de::Error>(self) -> Result<Self::Data, E>;
}

/// A route whose data is one `input` tensor (activations, normalizations).
pub trait InputRoute: 'static {
    /// What a body that is not an object is told it should be.
    const EXPECTING: &'static str;
    /// The route's keys (kept in a `static`, so built once).
    fn keys() -> &'static RouteKeys;
}

/// The envelope of an [`InputRoute`]: `input`, required.
#[derive(Debug)]
pub struct InputData<R> {
    input: Option<Tensor>,
    route: PhantomData<R>,
}

impl<R> Default for InputData<R> {
    fn default() -> Self {
        InputData {
            input: None,
            route: PhantomData,
        }
    }
}

impl<R: InputRoute> Envelope for InputData<R> {
    type Data = Tensor;
    const EXPECTING: &'static str = R::EXPECTING;
    const FIELDS: &'static [&'static str] = &["input"];

    fn keys() -> &'static RouteKeys {
        R::keys()
    }

    fn read<'de, A: MapAccess<'de>>(
        &mut self,
        key: &'static str,
        map: &mut A,
    ) -> Result<(), A::Error> {
        fill(&mut self.input, key, map)
    }

    fn finish<E: de::Error>(self) -> Result<Tensor, E> {
        required(self.input, "input")
    }
}

/// Reads the value of `key` into `slot`, refusing a second occurrence as the
/// derived `Deserialize` does.
pub fn fill<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    slot: &mut Option<T>,
    key: &'static str,
    map: &mut A,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(key));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

/// The required field `key`, or serde's "missing field" error.
pub fn required<T, E: de::Error>(slot: Option<T>, key: &'static str) -> Result<T, E> {
    slot.ok_or_else(|| E::missing_field(key))
}

/// A request body: the route's data `E`, the named operation's parameters
/// `P`, and the parameters of other operations that were given.
#[derive(Debug)]
pub struct Body<E: Envelope, P> {
    pub data: E::Data,
    pub params: P,
    /// Parameters of other operations of the route, in body order; the
    /// route refuses them with its own sentence.
    pub foreign: Vec<&'static str>,
}

impl<E: Envelope, P> Body<E, P> {
    /// The first foreign parameter in the route's order of parameters, so the
    /// error does not depend on the body's key order.
    pub fn first_foreign(&self) -> Option<&'static str> {
        E::keys()
            .params
            .iter()
            .copied()
            .find(|name| self.foreign.contains(name))
    }
}

impl<'de, E: Envelope, P: ParamSet> Deserialize<'de> for Body<E, P> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(BodyVisitor::<E, P>(PhantomData))
    }
}

struct BodyVisitor<E, P>(PhantomData<(E, P)>);

impl<'de, E: Envelope, P: ParamSet> Visitor<'de> for BodyVisitor<E, P> {
    type Value = Body<E, P>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(E::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body<E, P>, A::Error> {
        let mut envelope = E::default();
        let mut foreign = Vec::new();
        let params = P::deserialize(Split::<E, P, A> {
            map: &mut map,
            envelope: &mut envelope,
            foreign: &mut foreign,
            params: PhantomData,
        })?;
        Ok(Body {
            data: envelope.finish()?,
            params,
            foreign,
        })
    }
}

/// The body's map as the parameter struct sees it: only its own keys. The
/// envelope's keys are read into the envelope on the way, foreign
/// parameters recorded and skipped.
struct Split<'a, E, P, A> {
    map: &'a mut A,
    envelope: &'a mut E,
    foreign: &'a mut Vec<&'static str>,
    params: PhantomData<P>,
}

impl<'de, E: Envelope, P: ParamSet, A: MapAccess<'de>> Deserializer<'de> for Split<'_, E, P, A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_map(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de, E: Envelope, P: ParamSet, A: MapAccess<'de>> MapAccess<'de> for Split<'_, E, P, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            match self.map.next_key_seed(Classify::<E, P>(PhantomData))? {
                None => return Ok(None),
                Some(Key::Envelope(key)) => self.envelope.read(key, self.map)?,
                Some(Key::Param(name)) => {
                    let name = de::value::StrDeserializer::<A::Error>::new(name);
                    return seed.deserialize(name).map(Some);
                }
                Some(Key::Foreign(name)) => {
                    // `null` stands for "not given", as for the operation's own parameters.
                    if self.map.next_value::<Option<IgnoredAny>>()?.is_some() {
                        self.foreign.push(name);
                    }
                }
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// Where a key of the body belongs.
enum Key {
    Envelope(&'static str),
    Param(&'static str),
    Foreign(&'static str),
}

/// Classifies a key while it is read, so an unknown one fails inside the
/// key's own deserialization and the error's path names it.
struct Classify<E, P>(PhantomData<(E, P)>);

impl<'de, E: Envelope, P: ParamSet> DeserializeSeed<'de> for Classify<E, P> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl<'de, E: Envelope, P: ParamSet> Visitor<'de> for Classify<E, P> {
    type Value = Key;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<Er: de::Error>(self, key: &str) -> Result<Key, Er> {
        if let Some(field) = E::FIELDS.iter().find(|f| **f == key) {
            return Ok(Key::Envelope(field));
        }
        if let Some(doc) = P::DOCS.iter().find(|d| d.name == key) {
            return Ok(Key::Param(doc.name));
        }
        let keys = E::keys();
        match keys.param(key) {
            Some(name) => Ok(Key::Foreign(name)),
            None => Err(Er::unknown_field(key, &keys.fields)),
        }
    }
}

/// Every parameter name of `sets` (the operations of a route, in catalogue
/// order), each once, in order of first appearance.
pub fn union_of(sets: impl IntoIterator<Item = &'static [ParamDoc]>) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for doc in sets.into_iter().flatten() {
        if !names.contains(&doc.name) {
            names.push(doc.name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    param_set! {
        /// A parameter struct for the tests.
        pub struct Sample {
            /// a number
            /// on two lines
            alpha: f64 = 0.5,
            /// an optional array
            weights: Option<Tensor> = None,
        }
    }

    #[test]
    fn docs_come_from_the_declaration() {
        let names: Vec<&str> = Sample::DOCS.iter().map(|d| d.name).collect();
        assert_eq!(names, ["alpha", "weights"]);
        assert_eq!(Sample::DOCS[0].description, "a number on two lines");
        assert_eq!(Sample::DOCS[1].kind, "nested array");
        let catalogue = Sample::catalogue();
        assert_eq!(catalogue[0].default, json!(0.5));
        assert_eq!(catalogue[1].default, Value::Null);
        assert_eq!(catalogue[1].kind, "nested array");
    }

    #[test]
    fn absent_or_null_is_the_default_and_unknown_fields_are_refused() {
        let s: Sample = serde_json::from_str(r#"{"alpha": null}"#).unwrap();
        assert_eq!(s.alpha, 0.5);
        let s: Sample = serde_json::from_str(r#"{"weights": [1, 2]}"#).unwrap();
        assert_eq!(s.array_lens(), [("weights", 2)]);
        let err = serde_json::from_str::<Sample>(r#"{"alpah": 1}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `alpah`"), "{err}");
    }
}
