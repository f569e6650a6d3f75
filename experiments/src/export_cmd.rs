//! `hale export`: the policy bundle of a training run, checked and copied to where a
//! deployment (the actuation adapter) will read it.

use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use hale_envs::make;
use hale_policies::bundle::Bundle;
use std::path::{Path, PathBuf};

/// Arguments of `hale export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// A training run's folder (its `policy/` is exported) or a bundle folder.
    run: PathBuf,
    /// Folder to write the bundle to (`policy.json` and `weights.bpk`); must not exist.
    #[arg(long)]
    out: PathBuf,
}

/// Checks the bundle (format version, weights checksum, weights that fit, the env it
/// names builds and has the bundle's spaces), then copies it via a temporary folder
/// renamed into place, so `--out` holds a whole bundle or nothing.
pub fn run(args: ExportArgs) -> Result<()> {
    let src = if args.run.join("policy").join("policy.json").is_file() {
        args.run.join("policy")
    } else {
        args.run.clone()
    };
    let bundle = Bundle::load(&src, &Device::flex())?;
    let spec = &bundle.spec;
    let env = make(&spec.env_id, &spec.env_config).with_context(|| {
        format!(
            "{}: env {} with the bundle's env_config",
            src.join("policy.json").display(),
            spec.env_id
        )
    })?;
    bundle.check_fits(&spec.env_id, env.observation_space(), env.action_space())?;
    if args.out.exists() {
        bail!(
            "{} exists already: export writes a new folder",
            args.out.display()
        );
    }
    let parent = args
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = parent.join(format!(
        ".{}.tmp",
        args.out
            .file_name()
            .map_or("bundle".into(), |n| n.to_string_lossy())
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    for file in ["policy.json", "weights.bpk"] {
        std::fs::copy(src.join(file), tmp.join(file))
            .with_context(|| format!("copying {}", src.join(file).display()))?;
    }
    // Read back what was written before it takes the final name.
    Bundle::load(&tmp, &Device::flex())?;
    std::fs::rename(&tmp, &args.out)
        .with_context(|| format!("renaming {} to {}", tmp.display(), args.out.display()))?;
    println!(
        "{}: {} policy for {} (observation {:?}, action {:?}), weights sha256 {}",
        args.out.display(),
        spec.algorithm,
        spec.env_id,
        spec.observation_space,
        spec.action_space,
        spec.weights_sha256
    );
    Ok(())
}
