//! The models the plugin can play: the bundled ones (embedded from `assets/models` at
//! build time), the seeded stand-in when none is bundled, and a user file.

use newt_model::{ModelError, NewtModel};

include!(concat!(env!("OUT_DIR"), "/bundled_models.rs"));

/// Name shown for the untrained seeded model (only when no model is bundled).
const SEEDED_NAME: &str = "Untrained (seeded)";
/// Name of the last entry of the model parameter.
pub const USER_FILE_NAME: &str = "User file";

/// One value of the model parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelChoice {
    Bundled(usize),
    Seeded,
    UserFile,
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
}

/// Number of values of the model parameter (every bundled model, or the seeded one, then
/// the user file).
pub fn choice_count() -> usize {
    BUNDLED_MODELS.len().max(1) + 1
}

/// The model parameter's value `index` (clamped into range).
pub fn choice(index: i32) -> ModelChoice {
    let i = index.clamp(0, choice_count() as i32 - 1) as usize;
    if i + 1 == choice_count() {
        ModelChoice::UserFile
    } else if BUNDLED_MODELS.is_empty() {
        ModelChoice::Seeded
    } else {
        ModelChoice::Bundled(i)
    }
}

/// Display name of the model parameter's value `index`.
pub fn choice_name(index: i32) -> &'static str {
    match choice(index) {
        ModelChoice::Bundled(i) => BUNDLED_MODELS[i].0,
        ModelChoice::Seeded => SEEDED_NAME,
        ModelChoice::UserFile => USER_FILE_NAME,
    }
}

/// The parameter value whose name is `name` (case-insensitive), for typed-in values.
pub fn choice_index(name: &str) -> Option<i32> {
    (0..choice_count() as i32).find(|&i| choice_name(i).eq_ignore_ascii_case(name.trim()))
}

/// Loads a model and its display name. Not real-time safe (parses, allocates).
pub fn load(
    choice: ModelChoice,
    user_path: Option<&str>,
) -> Result<(NewtModel, String), LoadError> {
    match choice {
        ModelChoice::Bundled(i) => {
            let (name, bytes) = BUNDLED_MODELS[i];
            NewtModel::from_bytes(bytes)
                .map(|m| (m, name.to_string()))
                .map_err(|source| LoadError::Bundled {
                    name: name.to_string(),
                    source,
                })
        }
        ModelChoice::Seeded => Ok((NewtModel::seeded(0), SEEDED_NAME.to_string())),
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
    use super::*;

    #[test]
    fn every_choice_but_the_user_file_loads() {
        for i in 0..choice_count() as i32 - 1 {
            let (model, name) = load(choice(i), None).expect("bundled models load");
            assert_eq!(name, choice_name(i));
            assert!(model.meta.sample_rate > 0);
            assert_eq!(choice_index(&name.to_uppercase()), Some(i));
        }
        assert_eq!(choice(choice_count() as i32 - 1), ModelChoice::UserFile);
        assert!(matches!(
            load(ModelChoice::UserFile, None),
            Err(LoadError::NoUserFile)
        ));
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
