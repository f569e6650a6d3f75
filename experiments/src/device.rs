//! The compute device of `hale train --device`: the one place the binary names a
//! backend. The pure-Rust CPU backend (burn's flex) is always there; a GPU backend is
//! the `wgpu` cargo feature of this crate, off by default because it builds burn's
//! cubecl stack.

use anyhow::{Result, bail};
use burn::prelude::Device;

/// Devices this build can use, for `--help` and errors.
pub fn available() -> Vec<&'static str> {
    let mut v = vec!["cpu"];
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    v
}

/// Parses `cpu` or `wgpu` into a (non-autodiff) device.
pub fn parse(name: &str) -> Result<Device> {
    match name {
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        other => {
            let gpu = other.starts_with("cuda") || other == "wgpu";
            bail!(
                "--device {other}: this build has {}{}",
                available().join(", "),
                if gpu {
                    " (build with `--features hale-experiments/wgpu` for a GPU through wgpu)"
                } else {
                    ""
                }
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_always_and_unknown_devices_named() {
        assert!(super::parse("cpu").is_ok());
        let e = super::parse("tpu").unwrap_err().to_string();
        assert!(e.contains("--device tpu") && e.contains("cpu"), "{e}");
        if !cfg!(feature = "wgpu") {
            let e = super::parse("wgpu").unwrap_err().to_string();
            assert!(e.contains("--features hale-experiments/wgpu"), "{e}");
        }
    }
}
