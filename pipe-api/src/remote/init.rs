//! `shmpipe gateway init`: a CA, a gateway certificate and a client
//! certificate (rcgen), and the two configuration snippets that use them.

use super::tls;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::io;
use std::path::{Path, PathBuf};

/// What [`init`] wrote.
///
/// ```no_run
/// let out = shmpipe::remote::init("/etc/shmpipe".as_ref(), &["buildbox".into()], 0, 0, "buildbox", 4433)?;
/// println!("{}\n{}", out.gateway_toml, out.remote_toml);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Initialised {
    /// The files written (certificates and keys; keys are mode 0600).
    pub files: Vec<PathBuf>,
    /// `gateway.toml` for the gateway's machine.
    pub gateway_toml: String,
    /// A `remote.toml` host entry for the client's machine.
    pub remote_toml: String,
    /// The client certificate's SHA-256 (hex with colons).
    pub client_fingerprint: String,
}

fn gen_error(e: rcgen::Error) -> io::Error {
    io::Error::other(format!("certificate generation: {e}"))
}

fn write(
    dir: &Path,
    name: &str,
    text: &str,
    secret: bool,
    files: &mut Vec<PathBuf>,
) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    f.write_all(text.as_bytes())?;
    files.push(path);
    Ok(())
}

/// The hex of a fingerprint, with colons.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Certificates made here are valid from the start of this year for
/// [`VALID_YEARS`] more years: rcgen's default (1975 to 4096) would make
/// the expiry check meaningless for them, so a leaked key would stay good
/// for ever.
fn limited_validity(p: &mut CertificateParams) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Within a day of the real year: only the start of a year is used.
    let year = 1970 + (secs / 31_556_952) as i32;
    p.not_before = rcgen::date_time_ymd(year, 1, 1);
    p.not_after = rcgen::date_time_ymd(year + VALID_YEARS, 1, 1);
}

/// How many years after this one `gateway init`'s certificates expire.
const VALID_YEARS: i32 = 2;

/// Writes `ca.pem`, `ca.key`, `gateway.pem`, `gateway.key`, `client.pem`
/// and `client.key` into `dir` (never over existing files), the gateway
/// certificate valid for `names` (DNS names or IP addresses); returns the
/// configuration snippets, mapping the client certificate to `uid`/`gid`
/// and naming the host `host` at `port`.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("shmpipe-doc-init-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let out = shmpipe::remote::init(&dir, &["localhost".into(), "127.0.0.1".into()], 65534, 65534, "localhost", 4433)?;
/// assert_eq!(out.files.len(), 6);
/// assert!(out.gateway_toml.contains(&out.client_fingerprint));
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn init(
    dir: &Path,
    names: &[String],
    uid: u32,
    gid: u32,
    host: &str,
    port: u16,
) -> io::Result<Initialised> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(gen_error)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "shmpipe gateway CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    limited_validity(&mut ca_params);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(gen_error)?;
    let ca_key_pem = ca_key.serialize_pem();
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(gen_error)?;

    let leaf = |sans: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose| {
        let mut p = CertificateParams::new(sans).map_err(gen_error)?;
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![usage];
        limited_validity(&mut p);
        let key = KeyPair::generate().map_err(gen_error)?;
        let cert = p.signed_by(&key, &*ca).map_err(gen_error)?;
        Ok::<_, io::Error>((cert, key))
    };
    let (gw, gw_key) = leaf(
        names.to_vec(),
        "shmpipe gateway",
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let (client, client_key) = leaf(
        Vec::new(),
        "shmpipe client",
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    let fingerprint = hex(&tls::fingerprint(client.der()));

    let mut files = Vec::new();
    write(dir, "ca.pem", &ca.pem(), false, &mut files)?;
    write(dir, "ca.key", &ca_key_pem, true, &mut files)?;
    write(dir, "gateway.pem", &gw.pem(), false, &mut files)?;
    write(
        dir,
        "gateway.key",
        &gw_key.serialize_pem(),
        true,
        &mut files,
    )?;
    write(dir, "client.pem", &client.pem(), false, &mut files)?;
    write(
        dir,
        "client.key",
        &client_key.serialize_pem(),
        true,
        &mut files,
    )?;

    // Absolute, so the snippets work wherever they are saved.
    let dir = dir.canonicalize()?;
    let d = dir.display();
    let gateway_toml = format!(
        "listen = \"0.0.0.0:{port}\"\ncert = \"{d}/gateway.pem\"\nkey = \"{d}/gateway.key\"\n\
         client_ca = \"{d}/ca.pem\"\n\n[[clients]]\nname = \"client\"\n\
         fingerprint = \"{fingerprint}\"\nuid = {uid}\ngid = {gid}\ngroups = []\n"
    );
    // The gateway's certificate must carry the name the client checks.
    let server_name = match names.first() {
        Some(first) if !names.iter().any(|n| n == host) => {
            format!("server_name = \"{first}\"\n")
        }
        _ => String::new(),
    };
    let remote_toml = format!(
        "[hosts.\"{host}\"]\naddress = \"{host}\"\nport = {port}\n{server_name}\
         ca = \"{d}/ca.pem\"\ncert = \"{d}/client.pem\"\nkey = \"{d}/client.key\"\n"
    );
    Ok(Initialised {
        files,
        gateway_toml,
        remote_toml,
        client_fingerprint: fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `gateway init`'s certificates expire within a few years (rcgen's
    /// default ran to 4096; found by review) and are valid now.
    #[test]
    fn certificates_are_valid_now_and_for_a_few_years_only() {
        let mut p = CertificateParams::default();
        limited_validity(&mut p);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let (from, to) = (p.not_before.unix_timestamp(), p.not_after.unix_timestamp());
        assert!(
            from <= now && now < to,
            "not valid now: {from}..{to}, now {now}"
        );
        let years = (to - from) as f64 / 31_556_952.0;
        assert!(
            years <= f64::from(VALID_YEARS) + 1.01,
            "valid for {years} years"
        );
    }
}
