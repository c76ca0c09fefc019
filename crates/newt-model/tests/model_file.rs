//! The model file round-trips and every kind of corruption gets its own error.

use std::collections::HashMap;

use newt_model::{ModelError, ModelMeta, NewtModel, NewtWeights};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

fn seeded_bytes() -> Vec<u8> {
    NewtModel::seeded(1).to_bytes()
}

/// Rebuilds a file from `bytes`, letting `edit` change the tensor list and metadata.
fn rewrite(
    bytes: &[u8],
    edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<u8>)>, &mut HashMap<String, String>),
) -> Vec<u8> {
    let (_, meta) = SafeTensors::read_metadata(bytes).unwrap();
    let mut md = meta.metadata().clone().unwrap();
    let st = SafeTensors::deserialize(bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec()))
        .collect();
    edit(&mut tensors, &mut md);
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), d).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, Some(md)).unwrap()
}

#[test]
fn seeded_model_has_the_published_parameter_count() {
    let m = NewtModel::seeded(3);
    assert_eq!(NewtWeights::parameter_count(&m.meta), 266_945);
    assert_eq!(m.meta.instrument, NewtModel::SEEDED_NAME);
}

#[test]
fn round_trip_is_exact_and_seed_reproducible() {
    let m = NewtModel::seeded(5);
    let back = NewtModel::from_bytes(&m.to_bytes()).unwrap();
    assert_eq!(m, back);
    assert_eq!(NewtModel::seeded(5), m);
    assert_ne!(NewtModel::seeded(6).weights, m.weights);

    let dir = std::env::temp_dir().join(format!("newt-model-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.safetensors");
    m.save(&path).unwrap();
    assert_eq!(NewtModel::load(&path).unwrap(), m);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn missing_file_is_an_io_error() {
    let e = NewtModel::load("/nonexistent/model.safetensors").unwrap_err();
    assert!(matches!(e, ModelError::Io { .. }), "{e}");
}

#[test]
fn truncated_files_are_reported_as_truncated() {
    let bytes = seeded_bytes();
    for cut in [0, 5, 8, 100, bytes.len() / 2, bytes.len() - 1] {
        let e = NewtModel::from_bytes(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(e, ModelError::Truncated { .. }),
            "cut at {cut}: {e}"
        );
    }
}

#[test]
fn absurd_data_offsets_do_not_overflow() {
    let header = br#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    let e = NewtModel::from_bytes(&bytes).unwrap_err();
    assert!(matches!(e, ModelError::NotSafetensors(_)), "{e}");
}

#[test]
fn garbage_is_not_safetensors() {
    let mut junk = vec![16u8, 0, 0, 0, 0, 0, 0, 0];
    junk.extend_from_slice(b"this is not json");
    let e = NewtModel::from_bytes(&junk).unwrap_err();
    assert!(matches!(e, ModelError::NotSafetensors(_)), "{e}");
    let e = NewtModel::from_bytes(&[0xff; 64]).unwrap_err();
    assert!(matches!(e, ModelError::NotSafetensors(_)), "{e}");
}

#[test]
fn missing_tensor_names_the_tensor() {
    let bytes = rewrite(&seeded_bytes(), |t, _| {
        t.retain(|(n, _, _)| n != "film.out.weight")
    });
    match NewtModel::from_bytes(&bytes).unwrap_err() {
        ModelError::MissingTensor(n) => assert_eq!(n, "film.out.weight"),
        e => panic!("wrong error {e}"),
    }
}

#[test]
fn misshaped_tensor_is_reported_with_both_shapes() {
    let bytes = rewrite(&seeded_bytes(), |t, _| {
        let e = t
            .iter_mut()
            .find(|(n, _, _)| n == "harmonic_mixer.weight")
            .unwrap();
        e.1 = vec![101, 64];
    });
    match NewtModel::from_bytes(&bytes).unwrap_err() {
        ModelError::WrongShape {
            name,
            expected,
            actual,
        } => {
            assert_eq!(name, "harmonic_mixer.weight");
            assert_eq!(expected, vec![64, 101]);
            assert_eq!(actual, vec![101, 64]);
        }
        e => panic!("wrong error {e}"),
    }
}

#[test]
fn non_finite_weights_are_rejected() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let bytes = rewrite(&seeded_bytes(), |t, _| {
            let e = t.iter_mut().find(|(n, _, _)| n == "shapers.w2").unwrap();
            e.2[40..44].copy_from_slice(&bad.to_le_bytes());
        });
        match NewtModel::from_bytes(&bytes).unwrap_err() {
            ModelError::NonFinite { name, index } => {
                assert_eq!(name, "shapers.w2");
                assert_eq!(index, 10);
            }
            e => panic!("wrong error {e}"),
        }
    }
}

#[test]
fn unknown_version_and_bad_metadata_are_rejected() {
    let bytes = rewrite(&seeded_bytes(), |_, m| {
        m.insert("format_version".into(), "99".into());
    });
    assert!(matches!(
        NewtModel::from_bytes(&bytes).unwrap_err(),
        ModelError::UnknownVersion { found: 99, .. }
    ));
    let bytes = rewrite(&seeded_bytes(), |_, m| {
        m.remove("sample_rate");
    });
    assert!(matches!(
        NewtModel::from_bytes(&bytes).unwrap_err(),
        ModelError::MissingMetadata("sample_rate")
    ));
    let bytes = rewrite(&seeded_bytes(), |_, m| {
        m.insert("f0_std_hz".into(), "1e-40".into());
    });
    assert!(matches!(
        NewtModel::from_bytes(&bytes).unwrap_err(),
        ModelError::BadMetadata {
            key: "f0_std_hz",
            ..
        }
    ));
    let bytes = rewrite(&seeded_bytes(), |_, m| {
        m.insert("format".into(), "gpt2".into());
    });
    assert!(matches!(
        NewtModel::from_bytes(&bytes).unwrap_err(),
        ModelError::NotNewt(_)
    ));
}

#[test]
fn wrong_dtype_is_rejected() {
    let bytes = seeded_bytes();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let md = meta.metadata().clone().unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    let e = owned
        .iter_mut()
        .find(|(n, ..)| n == "output_mixer.bias")
        .unwrap();
    e.1 = Dtype::I32;
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let bytes = safetensors::serialize(views, Some(md)).unwrap();
    assert!(matches!(
        NewtModel::from_bytes(&bytes).unwrap_err(),
        ModelError::WrongDType { .. }
    ));
}

#[test]
fn layout_matches_the_published_shapes() {
    let meta = NewtModel::seeded(0).meta;
    let layout: HashMap<String, Vec<usize>> = NewtWeights::layout(&meta).into_iter().collect();
    assert_eq!(layout["encoder.gru.weight_hh_l0"], vec![384, 128]);
    assert_eq!(layout["encoder.gru.weight_ih_l0"], vec![384, 2]);
    assert_eq!(layout["harmonic_mixer.weight"], vec![64, 101]);
    assert_eq!(layout["film.out.weight"], vec![256, 128]);
    assert_eq!(layout["noise.out.weight"], vec![129, 128]);
    assert_eq!(layout["shapers.w2"], vec![64, 8, 8]);
    assert_eq!(layout["reverb.ir"], vec![31_999]);
    let _: &ModelMeta = &meta;
}

/// A version-1 file (every model of this project before the authors' models came) is
/// read as ours: our operators, A-weighted loudness. Version 2 keeps what it says.
#[test]
fn version_1_files_are_our_operators_and_version_2_round_trips() {
    use newt_model::{LoudnessMeasure, Operators};
    let v1 = rewrite(&seeded_bytes(), |_, m| {
        m.insert("format_version".into(), "1".into());
        for k in [
            "operators",
            "loudness_measure",
            "source",
            "licence",
            "training_data",
            "training_steps",
            "range_map",
        ] {
            m.remove(k);
        }
    });
    let model = NewtModel::from_bytes(&v1).unwrap();
    // A file without a range map gets one estimated from its statistics.
    assert!(model.meta.range_map.estimated);
    assert!(
        model
            .meta
            .range_map
            .knows(model.meta.f0_mean_hz, model.meta.loudness_mean_db)
    );
    assert_eq!(model.meta.operators, Operators::Newt);
    assert_eq!(model.meta.loudness_measure, LoudnessMeasure::AWeightedDbfs);
    assert_eq!(model.meta.format_version, newt_model::FORMAT_VERSION);

    let mut nws = NewtModel::seeded(1);
    nws.meta.operators = Operators::Nws;
    nws.meta.loudness_measure = LoudnessMeasure::NwsDb;
    nws.meta.range_map =
        newt_model::RangeMap::estimated(300.0, 100.0, -30.0, 10.0, LoudnessMeasure::NwsDb);
    nws.meta.licence = "MPL-2.0".into();
    nws.meta.training_steps = 120_000;
    let back = NewtModel::from_bytes(&nws.to_bytes()).unwrap();
    assert_eq!(back, nws);

    // A version-2 file must say which operators it needs.
    let bytes = rewrite(&nws.to_bytes(), |_, m| {
        m.insert("operators".into(), "ddsp".into());
    });
    assert!(matches!(
        NewtModel::from_bytes(&bytes).unwrap_err(),
        ModelError::BadMetadata {
            key: "operators",
            ..
        }
    ));
    let bytes = rewrite(&nws.to_bytes(), |_, m| {
        m.remove("loudness_measure");
    });
    assert!(matches!(
        NewtModel::from_bytes(&bytes).unwrap_err(),
        ModelError::MissingMetadata("loudness_measure")
    ));
}
