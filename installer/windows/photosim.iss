; Inno Setup 6 script: installs the one-folder PyInstaller build (dist\photosim), a Start-menu
; entry, and an Explorer verb "Find similar photos" on image files; the uninstaller removes all
; of it. Per-user install (no administrator rights): everything goes to the user's Programs
; folder and HKCU, so the verb is HKCU\Software\Classes\SystemFileAssociations\image\shell.
;
; Build (on Windows, after `installer\build.ps1` or `pyinstaller installer\photosim.spec`):
;   iscc /DAppVersion=0.1.0 installer\windows\photosim.iss
; Output: dist\photosim-<version>-setup.exe
;
; The verb runs:  "<app>\photosim.exe" --find-similar --untrusted-args "%1"
; Explorer substitutes %1 with the file's full path (C:\..., never starting with '-'); the
; quotes keep spaces inside one argument (Windows paths cannot contain '"'), and
; --untrusted-args makes photosim refuse anything after it that looks like an option. A second
; start hands the file to the running photosim and exits.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "photosim"
#define AppExe "photosim.exe"
#define VerbKey "Software\Classes\SystemFileAssociations\image\shell\photosim.findsimilar"

[Setup]
AppId={{5B0E3C1E-7D8A-4F4B-9A57-1F2D6C3B8E41}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=photosim developers
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename={#AppName}-{#AppVersion}-setup
SetupIconFile=..\..\build\photosim.ico
UninstallDisplayIcon={app}\{#AppExe}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesAssociations=yes
CloseApplications=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "..\..\dist\photosim\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"; Comment: "Find duplicate and similar photos"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Registry]
; "Find similar photos" on every image type (SystemFileAssociations\image covers .jpg, .png,
; .heic... whatever program opens them). uninsdeletekey removes the verb and its command.
Root: HKCU; Subkey: "{#VerbKey}"; ValueType: string; ValueName: ""; ValueData: "Find similar photos"; Flags: uninsdeletekey
Root: HKCU; Subkey: "{#VerbKey}"; ValueType: string; ValueName: "MUIVerb"; ValueData: "Find similar photos"
Root: HKCU; Subkey: "{#VerbKey}"; ValueType: string; ValueName: "Icon"; ValueData: """{app}\{#AppExe}"",0"
Root: HKCU; Subkey: "{#VerbKey}\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" --find-similar --untrusted-args ""%1"""

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
