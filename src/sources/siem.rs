//! The SIEM event sources `siem_cg` (Cloud Gateway) and `siem_ci` (Cloud Integrated): one
//! family each, pulled as batch files (`siem_batch`, one stream per type) or inline events
//! (`siem_stream`, one stream per family) as `siem_mode` says.

use super::context::SourceCtx;
use super::{siem_batch, siem_stream, BoxFuture, Found, ProbeFailure, Source, Stream};
use crate::config::{Config, SiemMode};
use crate::mimecast::client::Client;

pub const PERMISSION: &str =
    "Security Events and Data Retrieval | Threat and Security Events (SIEM) | Read";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Cg,
    Ci,
}

pub static CG: Family = Family::Cg;
pub static CI: Family = Family::Ci;

impl Family {
    /// The batch listing endpoint.
    pub fn batch_path(&self) -> &'static str {
        match self {
            Family::Cg => "/siem/v1/batch/events/cg",
            Family::Ci => "/siem/v1/batch/events/ci",
        }
    }

    /// The inline event endpoint.
    pub fn stream_path(&self) -> &'static str {
        match self {
            Family::Cg => "/siem/v1/events/cg",
            Family::Ci => "/siem/v1/events/ci",
        }
    }

    pub fn source(&self) -> &'static str {
        match self {
            Family::Cg => "siem_cg",
            Family::Ci => "siem_ci",
        }
    }

    /// The types selected for this family.
    pub fn types<'c>(&self, cfg: &'c Config) -> &'c [String] {
        match self {
            Family::Cg => &cfg.siem_types,
            Family::Ci => &cfg.siem_ci_types,
        }
    }
}

impl Source for Family {
    fn name(&self) -> &'static str {
        self.source()
    }

    fn permission(&self) -> Option<&'static str> {
        Some(PERMISSION)
    }

    fn records(&self) -> crate::schema::Records {
        crate::schema::Records::Siem
    }

    fn selection(&self, cfg: &Config) -> String {
        format!("{}:{}", self.source(), self.types(cfg).join(","))
    }

    fn streams(&'static self, ctx: &SourceCtx) -> Vec<Box<dyn Stream>> {
        let types = self.types(&ctx.cfg);
        match ctx.cfg.siem_mode {
            SiemMode::Batch => types
                .iter()
                .map(|ty| -> Box<dyn Stream> {
                    Box::new(siem_batch::BatchType::new(ctx, *self, ty))
                })
                .collect(),
            SiemMode::Stream => vec![Box::new(siem_stream::EventStream::new(
                ctx,
                *self,
                types.to_vec(),
            ))],
        }
    }

    fn probe<'a>(
        &'static self,
        client: &'a Client,
        cfg: &'a Config,
        sample: bool,
    ) -> BoxFuture<'a, Result<Found, ProbeFailure>> {
        Box::pin(async move {
            match cfg.siem_mode {
                SiemMode::Batch => siem_batch::probe(client, *self, self.types(cfg), sample).await,
                SiemMode::Stream => siem_stream::probe(client, *self, sample).await,
            }
        })
    }
}
