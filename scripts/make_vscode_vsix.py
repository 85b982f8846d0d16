"""Write the tiny VS Code extension desktop-basics' install-vsix task ships (run once; committed).

    python scripts/make_vscode_vsix.py

A .vsix is a zip: `extension.vsixmanifest` and `[Content_Types].xml` at the top, the extension
itself under `extension/`. This one adds a "Word Count: Show" command; fixed timestamps keep the
file byte-identical between runs."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "benchmarks/suites/desktop-basics/assets/vs_code/install-vsix"
PUBLISHER, NAME, VERSION = "cua-harness", "word-count", "0.0.1"

PACKAGE = {
    "name": NAME, "displayName": "Word Count", "publisher": PUBLISHER, "version": VERSION,
    "description": "Shows how many words the open file has.", "license": "MIT",
    "engines": {"vscode": "^1.60.0"}, "categories": ["Other"], "main": "./extension.js",
    "contributes": {"commands": [{"command": "wordCount.show", "title": "Word Count: Show"}]},
}
EXTENSION_JS = """"use strict";
const vscode = require("vscode");
function activate(context) {
  context.subscriptions.push(vscode.commands.registerCommand("wordCount.show", () => {
    const editor = vscode.window.activeTextEditor;
    const words = editor ? editor.document.getText().split(/\\s+/).filter(Boolean).length : 0;
    vscode.window.showInformationMessage(`${words} words`);
  }));
}
module.exports = { activate, deactivate() {} };
"""
MANIFEST = f"""<?xml version="1.0" encoding="utf-8"?>
<PackageManifest Version="2.0.0" xmlns="http://schemas.microsoft.com/developer/vsx-schema/2011">
  <Metadata>
    <Identity Language="en-US" Id="{NAME}" Version="{VERSION}" Publisher="{PUBLISHER}" />
    <DisplayName>Word Count</DisplayName>
    <Description xml:space="preserve">{PACKAGE["description"]}</Description>
    <Categories>Other</Categories>
    <Properties>
      <Property Id="Microsoft.VisualStudio.Code.Engine" Value="^1.60.0" />
    </Properties>
  </Metadata>
  <Installation>
    <InstallationTarget Id="Microsoft.VisualStudio.Code" />
  </Installation>
  <Dependencies />
  <Assets>
    <Asset Type="Microsoft.VisualStudio.Code.Manifest" Path="extension/package.json" Addressable="true" />
  </Assets>
</PackageManifest>
"""
CONTENT_TYPES = """<?xml version="1.0" encoding="utf-8"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
  <Default Extension=".json" ContentType="application/json" />
  <Default Extension=".js" ContentType="application/javascript" />
  <Default Extension=".vsixmanifest" ContentType="text/xml" />
</Types>
"""


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    members = {
        "extension.vsixmanifest": MANIFEST,
        "[Content_Types].xml": CONTENT_TYPES,
        "extension/package.json": json.dumps(PACKAGE, indent=2) + "\n",
        "extension/extension.js": EXTENSION_JS,
    }
    target = OUT / f"{NAME}-{VERSION}.vsix"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text)
    print(f"{target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
