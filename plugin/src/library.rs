//! The models the plugin can play: the built-in ones (registered in `plugin/build.rs` and
//! embedded from `assets/models` at build time) and a user file.
//!
//! The Model parameter's value names a model by its registry value, not by its position:
//! nice-plug saves an `IntParam` as its plain value (`ParamValue::I32`), and CLAP hosts
//! automate it by that value too, so a value keeps meaning the same model when models are
//! added. The menu order (the editor's, and [`menu`]) is the registry's: our models, the
//! NEWT authors' models, then "User file".

use newt_model::{ModelError, NewtModel};

/// A model of the registry in `plugin/build.rs`.
#[derive(Clone, Copy)]
pub struct BuiltIn {
    /// The Model parameter's value for it (never changes).
    pub value: i32,
    /// File stem in `assets/models`.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Menu group.
    pub group: &'static str,
    /// The file, or `None` when this build does not have it.
    pub bytes: Option<&'static [u8]>,
}

impl std::fmt::Debug for BuiltIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltIn")
            .field("value", &self.value)
            .field("id", &self.id)
            .field("name", &self.name)
            .field("group", &self.group)
            .field("bytes", &self.bytes.map(<[u8]>::len))
            .finish()
    }
}

include!(concat!(env!("OUT_DIR"), "/bundled_models.rs"));

/// Name of the user file's value.
pub const USER_FILE_NAME: &str = "User file";
/// Added to the name of a registered model this build does not have.
const UNAVAILABLE: &str = " (unavailable)";

/// What one value of the model parameter plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelChoice {
    /// `BUILT_IN[i]`, built in.
    BuiltIn(usize),
    /// `BUILT_IN[i]`, registered but not in this build (its file is not there).
    Missing(usize),
    UserFile,
    /// A value no model has here (a state saved by a later version with more models).
    Unknown(i32),
}

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no user model file chosen")]
    NoUserFile,
    #[error("{path}: {source}")]
    File { path: String, source: ModelError },
    #[error("bundled model {name}: {source}")]
    Bundled { name: String, source: ModelError },
    #[error("the model {name} is not built into this copy of NEWT")]
    Missing { name: String },
    #[error("model number {value} is unknown to this version of NEWT (saved by a newer one?)")]
    Unknown { value: i32 },
}

/// The model parameter's value `value`.
pub fn choice(value: i32) -> ModelChoice {
    if value == USER_FILE_VALUE {
        return ModelChoice::UserFile;
    }
    match BUILT_IN.iter().position(|m| m.value == value) {
        Some(i) if BUILT_IN[i].bytes.is_some() => ModelChoice::BuiltIn(i),
        Some(i) => ModelChoice::Missing(i),
        None => ModelChoice::Unknown(value),
    }
}

/// Display name of the model parameter's value `value` (the editor's and the host's).
pub fn choice_name(value: i32) -> String {
    match choice(value) {
        ModelChoice::BuiltIn(i) => BUILT_IN[i].name.to_string(),
        ModelChoice::Missing(i) => format!("{}{UNAVAILABLE}", BUILT_IN[i].name),
        ModelChoice::UserFile => USER_FILE_NAME.to_string(),
        ModelChoice::Unknown(v) => format!("Model {v}{UNAVAILABLE}"),
    }
}

/// The parameter value named `name` (case-insensitive): a display name as
/// [`choice_name`] writes it, or a model's file stem. For typed-in values.
pub fn choice_index(name: &str) -> Option<i32> {
    let name = name.trim();
    let bare = name
        .len()
        .checked_sub(UNAVAILABLE.len())
        .filter(|&n| name.is_char_boundary(n) && name[n..].eq_ignore_ascii_case(UNAVAILABLE))
        .map_or(name, |n| &name[..n]);
    if bare.eq_ignore_ascii_case(USER_FILE_NAME) {
        return Some(USER_FILE_VALUE);
    }
    BUILT_IN
        .iter()
        .find(|m| m.name.eq_ignore_ascii_case(bare) || m.id.eq_ignore_ascii_case(bare))
        .map(|m| m.value)
}

/// One entry of the model menu.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MenuItem {
    pub value: i32,
    pub name: &'static str,
    /// The registry group ("" for the user file).
    pub group: &'static str,
}

/// What the model menu lists, in order: the built-in models this build has, by group, then
/// "User file".
pub fn menu() -> impl Iterator<Item = MenuItem> {
    BUILT_IN
        .iter()
        .filter(|m| m.bytes.is_some())
        .map(|m| MenuItem {
            value: m.value,
            name: m.name,
            group: m.group,
        })
        .chain(std::iter::once(MenuItem {
            value: USER_FILE_VALUE,
            name: USER_FILE_NAME,
            group: "",
        }))
}

/// Loads a model and its display name. Not real-time safe (parses, allocates).
pub fn load(
    choice: ModelChoice,
    user_path: Option<&str>,
) -> Result<(NewtModel, String), LoadError> {
    match choice {
        ModelChoice::BuiltIn(i) => {
            let BuiltIn { name, bytes, .. } = BUILT_IN[i];
            let bytes = bytes.ok_or_else(|| LoadError::Missing {
                name: name.to_string(),
            })?;
            NewtModel::from_bytes(bytes)
                .map(|m| (m, name.to_string()))
                .map_err(|source| LoadError::Bundled {
                    name: name.to_string(),
                    source,
                })
        }
        ModelChoice::Missing(i) => Err(LoadError::Missing {
            name: BUILT_IN[i].name.to_string(),
        }),
        ModelChoice::Unknown(value) => Err(LoadError::Unknown { value }),
        ModelChoice::UserFile => {
            let path = user_path.ok_or(LoadError::NoUserFile)?;
            let model = NewtModel::load(path).map_err(|source| LoadError::File {
                path: path.to_string(),
                source,
            })?;
            let stem = std::path::Path::new(path)
                .file_stem()
                .map_or_else(|| path.to_string(), |s| s.to_string_lossy().into_owned());
            Ok((model, stem))
        }
    }
}

#[cfg(test)]
mod tests {
    use nice_plug::prelude::Param;

    use super::*;
    use crate::params::NewtParams;

    /// The value of the registered model `id`.
    fn value_of(id: &str) -> i32 {
        BUILT_IN
            .iter()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("{id} is not registered"))
            .value
    }

    /// Saved projects store these numbers: they must never change.
    #[test]
    fn the_values_saved_projects_hold_never_change() {
        for (id, value) in [
            ("flute", 0),
            ("trumpet", 1),
            ("violin", 2),
            ("violin-urmp", 4),
            ("flute-urmp", 5),
            ("trumpet-urmp", 6),
            ("cello", 7),
            ("alto-sax", 8),
        ] {
            assert_eq!(value_of(id), value, "{id}");
        }
        assert_eq!(USER_FILE_VALUE, 3);
        assert_eq!(choice(3), ModelChoice::UserFile);
        for (value, name) in [
            (0, "Flute"),
            (1, "Trumpet"),
            (2, "Violin"),
            (3, "User file"),
        ] {
            assert_eq!(choice_name(value), name, "value {value}");
            assert_eq!(choice_index(name), Some(value), "{name}");
        }
        // Every value of the parameter's range is a model, "User file" or a registered model
        // this build lacks: none is unknown.
        const { assert!(MAX_VALUE >= 8) };
        for v in 0..=MAX_VALUE {
            assert!(!matches!(choice(v), ModelChoice::Unknown(_)), "value {v}");
        }
    }

    /// A state saved when the parameter was Flute, Trumpet, Violin, User file (0..=3)
    /// restores the same choice now that the range is longer: the parameter keeps the plain
    /// value nice-plug saved, and the value still names the same model.
    #[test]
    fn a_value_saved_before_the_registry_grew_restores_the_same_choice() {
        let params = NewtParams::default();
        let model = &params.model;
        assert_eq!(model.step_count(), Some(MAX_VALUE as usize));
        for (saved, name) in [(2, "Violin"), (3, "User file")] {
            // What the host shows for the restored value, through the parameter's own
            // formatters (value_to_string / string_to_value).
            let normalized = model.preview_normalized(saved);
            assert_eq!(model.preview_plain(normalized), saved);
            assert_eq!(model.normalized_value_to_string(normalized, false), name);
            let typed = model
                .string_to_normalized_value(name)
                .expect("the name parses");
            assert_eq!(model.preview_plain(typed), saved, "{name}");
        }
        let violin = BUILT_IN.iter().position(|m| m.id == "violin").unwrap();
        assert_eq!(choice(2), ModelChoice::BuiltIn(violin));
        assert_eq!(choice(3), ModelChoice::UserFile);
    }

    #[test]
    fn every_built_in_model_loads_and_its_name_round_trips() {
        let mut loaded = 0;
        for (i, m) in BUILT_IN.iter().enumerate() {
            let c = choice(m.value);
            if m.bytes.is_none() {
                assert_eq!(c, ModelChoice::Missing(i));
                assert!(matches!(load(c, None), Err(LoadError::Missing { .. })));
                let label = choice_name(m.value);
                assert!(label.ends_with("(unavailable)"), "{label}");
                assert_eq!(choice_index(&label), Some(m.value), "{label}");
                continue;
            }
            assert_eq!(c, ModelChoice::BuiltIn(i));
            let (model, name) = load(c, None).expect("built-in models load");
            assert_eq!(name, m.name);
            assert_eq!(name, choice_name(m.value));
            assert!(model.meta.sample_rate > 0);
            assert_eq!(choice_index(&name.to_uppercase()), Some(m.value));
            assert_eq!(choice_index(m.id), Some(m.value));
            loaded += 1;
        }
        // The five trained here and the authors' three are in the repository.
        assert_eq!(loaded, BUILT_IN.len(), "only {loaded} built-in models");
        assert_eq!(loaded, 8);
        assert!(matches!(
            load(ModelChoice::UserFile, None),
            Err(LoadError::NoUserFile)
        ));
    }

    #[test]
    fn the_menu_lists_ours_then_the_authors_then_the_user_file() {
        let items: Vec<MenuItem> = menu().collect();
        let names: Vec<&str> = items.iter().map(|m| m.name).collect();
        assert_eq!(
            &names[..5],
            ["Flute", "Alto Sax", "Trumpet", "Violin", "Cello"]
        );
        assert_eq!(names.last(), Some(&USER_FILE_NAME));
        assert_eq!(items.last().map(|m| m.value), Some(USER_FILE_VALUE));
        // Only models this build has; groups contiguous.
        for m in &items[..items.len() - 1] {
            assert_eq!(choice_name(m.value), m.name);
        }
        let mut groups: Vec<&str> = items.iter().map(|m| m.group).collect();
        groups.dedup();
        let mut unique = groups.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(groups.len(), unique.len(), "groups interleave: {groups:?}");
        // The authors' models, when present, come after ours and before the user file.
        let authors: Vec<&MenuItem> = items.iter().filter(|m| m.name.contains("URMP")).collect();
        for a in authors {
            let pos = names.iter().position(|n| *n == a.name).unwrap();
            assert!((5..names.len() - 1).contains(&pos), "{names:?}");
        }
    }

    #[test]
    fn the_default_is_the_flute_by_name() {
        assert_eq!(DEFAULT_ID, "flute");
        assert_eq!(DEFAULT_VALUE, value_of("flute"));
        assert_eq!(choice_name(DEFAULT_VALUE), "Flute");
        assert!(matches!(choice(DEFAULT_VALUE), ModelChoice::BuiltIn(_)));
        let params = NewtParams::default();
        assert_eq!(params.model.default_plain_value(), DEFAULT_VALUE);
        assert_eq!(params.model.value(), DEFAULT_VALUE);
    }

    #[test]
    fn an_unknown_or_missing_value_loads_nothing_with_an_error() {
        let err = load(choice(MAX_VALUE + 1), None).unwrap_err();
        assert!(err.to_string().contains("unknown"), "{err}");
        assert_eq!(
            choice_name(MAX_VALUE + 1),
            format!("Model {} (unavailable)", MAX_VALUE + 1)
        );
        assert_eq!(choice_index("Violin (URMP) (unavailable)"), Some(4));
        assert_eq!(choice_index("violin-urmp"), Some(4));
        assert_eq!(choice_index("no such model"), None);
    }

    #[test]
    fn a_corrupt_user_file_is_a_clear_error() {
        let path =
            std::env::temp_dir().join(format!("newt-corrupt-{}.safetensors", std::process::id()));
        std::fs::write(&path, b"not a model").unwrap();
        let err = load(ModelChoice::UserFile, path.to_str()).unwrap_err();
        std::fs::remove_file(&path).ok();
        let text = err.to_string();
        assert!(text.contains("newt-corrupt"), "{text}");
    }
}
