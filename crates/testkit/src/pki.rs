//! A throw-away certificate authority for TLS tests, made with the `openssl` command (Debian's
//! `openssl` package; `scripts/test.sh` installs it): a CA, server certificates for given
//! names, a client certificate, and an unrelated second CA. EC P-256 keys, valid two days,
//! in PKCS#8 PEM files under a temp dir that lives as long as the [`Pki`].

use std::path::{Path, PathBuf};
use std::process::Command;

/// The CA and its files.
pub struct Pki {
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl: {e} (scripts/test.sh installs it)"));
    assert!(out.status.success(), "openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

const EC: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

impl Pki {
    /// A new CA (`ca.crt`, `ca.key`), a client certificate it signed (`client.crt`,
    /// `client.key`), and an unrelated CA (`other-ca.crt`).
    pub fn new() -> Pki {
        let dir = tempfile::Builder::new().prefix("telltale-pki-").tempdir().expect("temp dir");
        let p = Pki { dir };
        for name in ["ca", "other-ca"] {
            let mut args = vec!["req", "-x509", "-nodes", "-days", "2"];
            args.extend(EC);
            let (key, crt, subj) = (format!("{name}.key"), format!("{name}.crt"), format!("/CN=telltale test {name}"));
            args.extend([
                "-keyout",
                &key,
                "-out",
                &crt,
                "-subj",
                &subj,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
            openssl(p.dir(), &args);
        }
        p.issue("client", "extendedKeyUsage=clientAuth");
        p
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A file of the CA (`ca.crt`, `client.key`, ...).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }

    /// A server certificate `NAME.crt` / `NAME.key` signed by the CA, valid for `sans`
    /// (`IP:127.0.0.1`, `DNS:node.test`).
    pub fn server(&self, name: &str, sans: &[&str]) {
        self.issue(name, &format!("subjectAltName={}\nextendedKeyUsage=serverAuth", sans.join(",")));
    }

    /// A client certificate `NAME.crt` / `NAME.key` signed by the CA, with subject alternative
    /// names `sans` (`DNS:alice.test`, `email:a@b.test`, `URI:spiffe://t/a`, `IP:10.0.0.1`).
    pub fn client(&self, name: &str, sans: &[&str]) {
        self.issue(name, &format!("subjectAltName={}\nextendedKeyUsage=clientAuth", sans.join(",")));
    }

    fn issue(&self, name: &str, ext: &str) {
        let (key, csr, crt, extfile) =
            (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"), format!("{name}.ext"));
        std::fs::write(self.path(&extfile), format!("basicConstraints=CA:FALSE\n{ext}\n")).expect("write ext file");
        let subj = format!("/CN=telltale test {name}");
        let mut args = vec!["req", "-nodes"];
        args.extend(EC);
        args.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(self.dir(), &args);
        openssl(
            self.dir(),
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &crt,
                "-extfile",
                &extfile,
            ],
        );
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}
