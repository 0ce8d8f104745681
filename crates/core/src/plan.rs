//! A load plan: every step a request means, in order, with modprobe's `--show-depends`
//! lines for the same request (the binary shows it as a table or JSON).

use serde::Serialize;

/// How a requested name was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "file")]
pub enum Via {
    Name,
    ConfigAlias(String),
    Symbol,
    InstallCommand,
    Alias,
    Builtin,
    BuiltinAlias,
}

impl Via {
    /// True when the name was a module name rather than an alias of one.
    pub fn is_module_name(&self) -> bool {
        matches!(self, Via::Name | Via::Builtin | Via::InstallCommand)
    }
}

/// One requested name and the module it resolved to.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub requested: String,
    pub module: String,
    pub via: Via,
    /// The file that blacklists this module, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blacklisted: Option<String>,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    Insert {
        path: String,
        options: String,
    },
    Builtin,
    Loaded,
    /// Someone else is loading it right now: wait for it.
    Coming,
    /// An `install` command stands in for this module; modgate never runs it.
    Disabled {
        command: String,
        source: String,
    },
    /// Named by configuration but has no file and is not built in.
    Missing,
}

/// Why a module is in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "why")]
pub enum Reason {
    Requested { name: String },
    Dependency { of: String },
    SoftdepPre { of: String },
    SoftdepPost { of: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub module: String,
    #[serde(flatten)]
    pub action: Action,
    #[serde(flatten)]
    pub reason: Reason,
    /// A failure of a required step fails the request; softdeps are not required.
    pub required: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub targets: Vec<Target>,
    pub steps: Vec<Step>,
    /// The lines `modprobe --show-depends` prints for the same request.
    #[serde(skip)]
    pub modprobe_lines: Vec<String>,
}

impl Plan {
    /// Adds a step unless the module is already in the plan (a module loads once; a
    /// later required mention makes the earlier one required).
    pub fn push_step(&mut self, step: Step) {
        if let Some(s) = self.steps.iter_mut().find(|s| s.module == step.module) {
            s.required |= step.required;
            return;
        }
        self.steps.push(step);
    }

    /// Every module the plan touches (the closure the policy checks).
    pub fn closure(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().map(|s| s.module.as_str())
    }

    pub fn render_modprobe(&self) -> String {
        let mut out = String::new();
        for l in &self.modprobe_lines {
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}
