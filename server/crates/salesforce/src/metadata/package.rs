//! Deploy packages: `package.xml` listing every component, plus the component files, zipped
//! in memory in the Metadata API's "mdapi" layout (`<folder>/<fullName>.<suffix>`).

use std::collections::BTreeMap;
use std::io::{Cursor, Write};

use bytes::Bytes;
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

use super::spec::SpecError;
use super::xml::XmlWriter;
use crate::version::ApiVersion;

/// A deploy zip, ready for [`crate::Client::deploy`].
#[derive(Clone, PartialEq, Eq)]
pub struct DeployZip(Bytes);

impl DeployZip {
    /// Wraps a zip built elsewhere.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        Self(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl std::fmt::Debug for DeployZip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeployZip({} bytes)", self.0.len())
    }
}

/// Collects components and writes the zip.
#[derive(Debug, Clone)]
pub struct PackageBuilder {
    version: ApiVersion,
    /// Metadata type → member names, for package.xml.
    types: BTreeMap<&'static str, Vec<String>>,
    /// Path in the zip → content.
    files: BTreeMap<String, String>,
    /// Metadata type → members to delete, for `destructiveChanges.xml`.
    destroy: BTreeMap<&'static str, Vec<String>>,
}

impl PackageBuilder {
    pub fn new(version: ApiVersion) -> Self {
        Self {
            version,
            types: BTreeMap::new(),
            files: BTreeMap::new(),
            destroy: BTreeMap::new(),
        }
    }

    /// Adds component `member` of `metadata_type` at `folder/member.suffix`. The member
    /// name must already be a checked API name.
    pub fn add(
        &mut self,
        metadata_type: &'static str,
        folder: &'static str,
        suffix: &'static str,
        member: &str,
        content: String,
    ) -> &mut Self {
        self.types
            .entry(metadata_type)
            .or_default()
            .push(member.to_string());
        self.files
            .insert(format!("{folder}/{member}.{suffix}"), content);
        self
    }

    /// Deletes component `member` of `metadata_type` (listed in `destructiveChanges.xml`,
    /// which the Metadata API applies after the rest of the deploy). The member name must
    /// already be a checked API name.
    pub fn destroy(&mut self, metadata_type: &'static str, member: &str) -> &mut Self {
        self.destroy
            .entry(metadata_type)
            .or_default()
            .push(member.to_string());
        self
    }

    /// `destructiveChanges.xml`, when anything is to be deleted.
    pub fn destructive_xml(&self) -> Result<Option<String>, SpecError> {
        if self.destroy.is_empty() {
            return Ok(None);
        }
        let mut xml = XmlWriter::new("Package");
        for (metadata_type, members) in &self.destroy {
            xml.open("types");
            for member in members {
                xml.text("members", "member name", member)?;
            }
            xml.constant("name", metadata_type);
            xml.close();
        }
        Ok(Some(xml.finish()))
    }

    /// `package.xml`, naming each member explicitly (a `*` wildcard would also pick up
    /// components this deploy did not mean to touch when `purgeOnDelete` is used).
    pub fn package_xml(&self) -> Result<String, SpecError> {
        let mut xml = XmlWriter::new("Package");
        for (metadata_type, members) in &self.types {
            xml.open("types");
            for member in members {
                xml.text("members", "member name", member)?;
            }
            xml.constant("name", metadata_type);
            xml.close();
        }
        xml.text("version", "API version", &self.version.to_string())?;
        Ok(xml.finish())
    }

    /// The file names the zip will contain, `package.xml` first.
    pub fn file_names(&self) -> Vec<String> {
        std::iter::once("package.xml".to_string())
            .chain((!self.destroy.is_empty()).then(|| "destructiveChanges.xml".to_string()))
            .chain(self.files.keys().cloned())
            .collect()
    }

    /// Writes the zip (deflated, fixed timestamps so the same spec gives the same bytes).
    pub fn build(&self) -> Result<DeployZip, SpecError> {
        let zip_error = |e: zip::result::ZipError| SpecError::Zip(e.to_string());
        let io_error = |e: std::io::Error| SpecError::Zip(e.to_string());
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .unix_permissions(0o644);
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        zip.start_file("package.xml", options).map_err(zip_error)?;
        zip.write_all(self.package_xml()?.as_bytes())
            .map_err(io_error)?;
        if let Some(destructive) = self.destructive_xml()? {
            zip.start_file("destructiveChanges.xml", options)
                .map_err(zip_error)?;
            zip.write_all(destructive.as_bytes()).map_err(io_error)?;
        }
        for (path, content) in &self.files {
            zip.start_file(path.as_str(), options).map_err(zip_error)?;
            zip.write_all(content.as_bytes()).map_err(io_error)?;
        }
        let cursor = zip.finish().map_err(zip_error)?;
        Ok(DeployZip(Bytes::from(cursor.into_inner())))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Read;

    /// Unzips into (name, content) pairs in archive order.
    pub(crate) fn unzip(zip: &DeployZip) -> Vec<(String, String)> {
        let mut archive = zip::ZipArchive::new(Cursor::new(zip.as_bytes().to_vec())).unwrap();
        (0..archive.len())
            .map(|i| {
                let mut file = archive.by_index(i).unwrap();
                let mut content = String::new();
                file.read_to_string(&mut content).unwrap();
                (file.name().unwrap().to_string(), content)
            })
            .collect()
    }

    #[test]
    fn package_xml_lists_members_by_type() {
        let mut builder = PackageBuilder::new(ApiVersion::DEFAULT);
        builder.add(
            "ExternalClientApplication",
            "externalClientApps",
            "eca",
            "Acme",
            "<x/>".into(),
        );
        builder.add(
            "ExtlClntAppOauthSettings",
            "extlClntAppOauthSettings",
            "ecaOauth",
            "Acme",
            "<y/>".into(),
        );
        let xml = builder.package_xml().unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let types: Vec<(String, String)> = doc
            .root_element()
            .children()
            .filter(|n| n.has_tag_name("types"))
            .map(|t| {
                let get = |name: &str| {
                    t.children()
                        .find(|c| c.has_tag_name(name))
                        .and_then(|c| c.text())
                        .unwrap()
                        .to_string()
                };
                (get("name"), get("members"))
            })
            .collect();
        assert_eq!(
            types,
            vec![
                ("ExternalClientApplication".into(), "Acme".into()),
                ("ExtlClntAppOauthSettings".into(), "Acme".into())
            ]
        );
        let version = doc
            .root_element()
            .children()
            .find(|n| n.has_tag_name("version"))
            .unwrap();
        assert_eq!(version.text(), Some("66.0"));
    }

    #[test]
    fn zips_are_deterministic_and_readable() {
        let mut builder = PackageBuilder::new(ApiVersion::DEFAULT);
        builder.add(
            "ExternalClientApplication",
            "externalClientApps",
            "eca",
            "Acme",
            "<x/>".into(),
        );
        let a = builder.build().unwrap();
        let b = builder.build().unwrap();
        assert_eq!(a, b);
        let files = unzip(&a);
        assert_eq!(files[0].0, "package.xml");
        assert_eq!(
            files[1],
            ("externalClientApps/Acme.eca".into(), "<x/>".into())
        );
        assert_eq!(
            builder.file_names(),
            vec!["package.xml", "externalClientApps/Acme.eca"]
        );
        assert!(format!("{a:?}").starts_with("DeployZip("));
    }
}
