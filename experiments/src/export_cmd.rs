//! `hale export`: the policy bundle of a training run (or a multi-agent run's team
//! folder, every member checked), copied to where a deployment (the actuation adapter)
//! will read it; with `--onnx`, the network also as
//! ONNX (burn-onnx's exporter) for consumers outside Rust.

use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use hale_envs::make;
use hale_policies::bundle::Bundle;
use hale_policies::team::{TEAM_FILE, team_dir};
use std::path::{Path, PathBuf};

/// Arguments of `hale export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// A training run's folder (its `policy/` is exported), a bundle folder, or a team
    /// folder (`team.json` and a bundle per agent, from a multi-agent run).
    #[arg(required_unless_present = "from_mlflow")]
    run: Option<PathBuf>,
    /// Export a registered model version instead: models:/NAME/VERSION, fetched from
    /// the tracking server --mlflow names and checked like any bundle.
    #[arg(
        long,
        value_name = "MODEL_URI",
        conflicts_with = "run",
        requires = "mlflow"
    )]
    from_mlflow: Option<String>,
    /// The MLflow tracking server (http://HOST:PORT) of --from-mlflow.
    #[arg(long, value_name = "URL")]
    mlflow: Option<String>,
    /// Folder to write the bundle to (`policy.json` and `weights.bpk`; a team: `team.json`
    /// and a folder per agent); must not exist.
    #[arg(long)]
    out: PathBuf,
    /// Also write `policy.onnx` (opset 18): input `[batch, obs_dim]` float
    /// observations (normalised as `policy.json` says, if it says so), outputs the
    /// action logits `[batch, Σ heads]` (mask them yourself) and the values `[batch]`.
    /// MLP policies only (in a team: every member); a GNN's message passing is not
    /// exported.
    #[arg(long)]
    onnx: bool,
}

/// Checks the bundle (format version, weights checksum, weights that fit, the env it
/// names builds and has the bundle's spaces), then copies it via a temporary folder
/// renamed into place, so `--out` holds a whole bundle or nothing.
pub fn run(args: ExportArgs) -> Result<()> {
    // A registered version is fetched into a temporary folder, then checked and
    // exported like a bundle on disk.
    let fetched = match (&args.from_mlflow, &args.mlflow) {
        (Some(model), Some(uri)) => Some(fetch(uri, model)?),
        _ => None,
    };
    let run = match (&fetched, &args.run) {
        (Some(dir), _) => dir.path().to_path_buf(),
        (None, Some(run)) => run.clone(),
        (None, None) => bail!("give a run or bundle folder, or --from-mlflow models:/NAME/VERSION"),
    };
    // Every bundle is checked before anything is written: a team's members each
    // against the single-agent env it mirrors.
    let team = team_dir(&run);
    let members: Vec<(Option<String>, Bundle)> = match &team {
        Some(dir) => team_agents(dir)?
            .into_iter()
            .map(|agent| {
                let bundle = checked(&dir.join(&agent))?;
                Ok((Some(agent), bundle))
            })
            .collect::<Result<_>>()?,
        None if run.join("policy").join("policy.json").is_file() => {
            vec![(None, checked(&run.join("policy"))?)]
        }
        None => vec![(None, checked(&run)?)],
    };
    // A team's member goes into the folder of its agent's name.
    let place = |root: &Path, agent: &Option<String>| match agent {
        Some(agent) => root.join(agent),
        None => root.to_path_buf(),
    };
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
    // The folder takes its name only once everything in it is written and every
    // bundle reads back.
    hale_sim::fs::create_dir_atomic(&args.out, |tmp| -> Result<()> {
        for (agent, bundle) in &members {
            let to = place(tmp, agent);
            if agent.is_some() {
                std::fs::create_dir(&to).with_context(|| format!("creating {}", to.display()))?;
            }
            for file in ["policy.json", "weights.bpk"] {
                std::fs::copy(bundle.dir.join(file), to.join(file))
                    .with_context(|| format!("copying {}", bundle.dir.join(file).display()))?;
            }
            if args.onnx {
                let bytes = onnx_bytes(bundle)?;
                std::fs::write(to.join("policy.onnx"), bytes).context("writing policy.onnx")?;
            }
            Bundle::load(&to, &Device::flex())?;
        }
        if let Some(dir) = &team {
            std::fs::copy(dir.join(TEAM_FILE), tmp.join(TEAM_FILE))
                .with_context(|| format!("copying {}", dir.join(TEAM_FILE).display()))?;
        }
        Ok(())
    })
    .with_context(|| format!("writing {}", args.out.display()))?;
    for (agent, bundle) in &members {
        let spec = &bundle.spec;
        println!(
            "{}: {} policy for {} (observation {:?}, action {:?}), weights sha256 {}",
            place(&args.out, agent).display(),
            spec.algorithm,
            spec.env_id,
            spec.observation_space,
            spec.action_space,
            spec.weights_sha256
        );
    }
    Ok(())
}

/// The bundle in `dir`, checked: it loads (format version, weights checksum, weights
/// that fit), and the env it names builds and has the bundle's spaces.
fn checked(dir: &Path) -> Result<Bundle> {
    let bundle = Bundle::load(dir, &Device::flex())?;
    let spec = &bundle.spec;
    let env = make(&spec.env_id, &spec.env_config).with_context(|| {
        format!(
            "{}: env {} with the bundle's env_config",
            dir.join("policy.json").display(),
            spec.env_id
        )
    })?;
    bundle.check_fits(&spec.env_id, env.observation_space(), env.action_space())?;
    Ok(bundle)
}

/// The agents a team folder's [`TEAM_FILE`] lists, each with a bundle folder beside it.
fn team_agents(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join(TEAM_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let team: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let agents: Vec<String> = team["agents"]
        .as_array()
        .and_then(|a| a.iter().map(|x| x.as_str().map(String::from)).collect())
        .with_context(|| {
            format!(
                "{}: field agents: not a list of agent names",
                path.display()
            )
        })?;
    anyhow::ensure!(
        !agents.is_empty(),
        "{}: field agents: empty",
        path.display()
    );
    for agent in &agents {
        anyhow::ensure!(
            !agent.contains(['/', '\\']) && agent != ".." && agent != ".",
            "{}: field agents: {agent:?} is not an agent name",
            path.display()
        );
    }
    Ok(agents)
}

/// Downloads registered model `model` (models:/NAME/VERSION) from the server at `uri`.
fn fetch(uri: &str, model: &str) -> Result<tempfile::TempDir> {
    use hale_experiments::mlflow::{Client, parse_model_uri};
    let (name, version) = parse_model_uri(model)?;
    let client = Client::new(uri)?;
    let (source, run_id) = client.model_version(&name, &version)?;
    let dir = tempfile::tempdir().context("creating a temporary folder")?;
    let files = client.download_dir(&source, dir.path())?;
    anyhow::ensure!(
        dir.path().join("policy.json").is_file() || dir.path().join(TEAM_FILE).is_file(),
        "{model} (run {run_id}) at {source} has no policy.json or {TEAM_FILE} (files: {}): \
         not a hale bundle or team",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprintln!(
        "fetched {model} from {source} (run {run_id}): {} files",
        files.len()
    );
    Ok(dir)
}

/// The bundle's network as an ONNX model with a dynamic batch axis.
fn onnx_bytes(bundle: &Bundle) -> Result<Vec<u8>> {
    use burn::prelude::Tensor;
    use burn_onnx::export::{AxisSpec, InputSpec, OnnxExporter};
    use hale_policies::network::Network;
    let Network::Mlp(net) = &bundle.model else {
        bail!(
            "{}: --onnx exports MLP policies; this bundle's network is a GNN (its graph batching is not exported)",
            bundle.dir.display()
        );
    };
    let d = bundle.spec.obs_dim;
    let device = Device::flex();
    let input = |rows: usize| Tensor::<2>::zeros([rows, d], &device);
    let model = OnnxExporter::new()
        .export_dynamic(
            net,
            input(1),
            input(3),
            &[InputSpec::new(vec![
                AxisSpec::dynamic("batch"),
                AxisSpec::Static,
            ])],
            |m, x| (m.logits(x.clone()), m.value(x)),
        )
        .map_err(|e| anyhow::anyhow!("{}: ONNX export: {e}", bundle.dir.display()))?;
    Ok(model.into_bytes())
}
