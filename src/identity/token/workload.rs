//! Workload identity (AKS): the federated token file's current contents are the client
//! assertion. The file is rotated by the platform (about hourly), so it is read for every token
//! request and never cached.
//!
//! Invariant: the token read from the file is a [`Secret`]; errors name the file, never its
//! contents.

use std::path::Path;

use super::entra::EntraError;
use crate::config::secret::Secret;

/// Reads the federated token now.
pub fn read_token(path: &Path) -> Result<Secret, EntraError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        EntraError::Credential(format!(
            "cannot read the federated token file {}: {e}",
            path.display()
        ))
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(EntraError::Credential(format!(
            "the federated token file {} is empty",
            path.display()
        )));
    }
    Ok(Secret::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_current_contents_and_names_the_file_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "eyJ.first.sig\n").unwrap();
        assert_eq!(read_token(&path).unwrap().expose(), "eyJ.first.sig");
        std::fs::write(&path, "eyJ.second.sig").unwrap();
        assert_eq!(read_token(&path).unwrap().expose(), "eyJ.second.sig");
        std::fs::write(&path, "  \n").unwrap();
        assert!(read_token(&path).unwrap_err().to_string().contains("empty"));
        let err = read_token(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing"), "{err}");
    }
}
