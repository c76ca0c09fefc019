//! Fetching data sources through the registries this machine reaches (DATA.md): Debian
//! packages are downloaded and unpacked without installing, npm packages are packed and
//! unpacked. Everything lands under a `sources` folder (ignored by git) and is reused.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

pub fn run_tool(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("starting {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// The first entry of `dir` whose file name starts with `prefix` and ends with `suffix`.
fn find_file(dir: &Path, prefix: &str, suffix: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(prefix) && n.ends_with(suffix)
            })
        })
}

/// The root of Debian package `package` unpacked into `sources/package` (downloaded with
/// `apt-get download` first when needed).
pub fn debian_package(package: &str, sources: &Path) -> anyhow::Result<PathBuf> {
    let unpacked = sources.join(package);
    if unpacked.exists() {
        return Ok(unpacked);
    }
    std::fs::create_dir_all(sources)?;
    let deb = match find_file(sources, &format!("{package}_"), ".deb") {
        Some(deb) => deb,
        None => {
            println!("fetching {package} (Debian)");
            run_tool(
                Command::new("apt-get")
                    .args(["download", package])
                    .current_dir(sources),
                &format!(
                    "apt-get download {package} (run `apt-get update` first if it cannot find it)"
                ),
            )?;
            find_file(sources, &format!("{package}_"), ".deb")
                .with_context(|| format!("the downloaded {package} .deb"))?
        }
    };
    let partial = sources.join(format!("{package}.partial"));
    std::fs::remove_dir_all(&partial).ok();
    run_tool(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&partial),
        "dpkg-deb -x",
    )?;
    std::fs::rename(&partial, &unpacked)?;
    Ok(unpacked)
}

/// The `package/` folder of npm package `name@version` unpacked into
/// `sources/name-version` (packed with `npm pack` first when needed).
pub fn npm_package(name: &str, version: &str, sources: &Path) -> anyhow::Result<PathBuf> {
    let unpacked = sources.join(format!("{name}-{version}"));
    if unpacked.join("package").exists() {
        return Ok(unpacked.join("package"));
    }
    std::fs::create_dir_all(sources)?;
    let tarball = sources.join(format!("{name}-{version}.tgz"));
    if !tarball.exists() {
        println!("fetching {name}@{version} (npm)");
        run_tool(
            Command::new("npm")
                .args(["pack", &format!("{name}@{version}")])
                .current_dir(sources),
            &format!("npm pack {name}@{version}"),
        )?;
    }
    let partial = sources.join(format!("{name}-{version}.partial"));
    std::fs::remove_dir_all(&partial).ok();
    std::fs::create_dir_all(&partial)?;
    run_tool(
        Command::new("tar")
            .arg("xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&partial),
        "tar xzf",
    )?;
    std::fs::rename(&partial, &unpacked)?;
    Ok(unpacked.join("package"))
}
