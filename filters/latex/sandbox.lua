-- attnslides: Lua's own file access in LuaLaTeX, limited as kpathsea's paranoid mode limits TeX's.
--
-- openin_any=p and openout_any=p stop \input{/etc/passwd}, but Lua's io.open, dofile, os.remove …
-- (reachable from a caption through \directlua) bypass kpathsea. filters/latex/preamble.tex loads this
-- file (named by ATTNSLIDES_LUA_SANDBOX, which only `attnslides build` sets) at the end of the
-- preamble: from then on Lua reads only inside the project (ATTNSLIDES_READ), TeX's trees and the
-- system's fonts, and writes only in the build folder (ATTNSLIDES_WRITE) and TeX's caches.

local read_roots, write_roots = {}, {}

local function add(list, value)
  for part in string.gmatch(value or "", "[^:;,{}!]+") do
    if part:sub(1, 1) == "/" then list[#list + 1] = part:gsub("/+$", "") end
  end
end

add(write_roots, os.getenv("ATTNSLIDES_WRITE"))
for _, name in ipairs({"TEXMFVAR", "TEXMFCACHE", "TEXMFSYSVAR"}) do add(write_roots, kpse.expand_var("$" .. name)) end
for _, root in ipairs(write_roots) do read_roots[#read_roots + 1] = root end
add(read_roots, os.getenv("ATTNSLIDES_READ"))
for _, name in ipairs({"TEXMFDIST", "TEXMFMAIN", "TEXMFLOCAL", "TEXMFHOME", "TEXMFSYSCONFIG", "TEXMFCONFIG"}) do
  add(read_roots, kpse.expand_var("$" .. name))
end
add(read_roots, "/usr/share:/usr/local/share:/etc/fonts:/var/cache/fontconfig:/etc/texmf:/var/lib/texmf")

local currentdir = lfs.currentdir

local function allowed(name, roots)
  if type(name) ~= "string" then return false end
  local path = name:sub(1, 1) == "/" and name or (currentdir() .. "/" .. name)
  if path:find("/%.%./") or path:find("/%.%.$") then return false end
  for _, root in ipairs(roots) do
    if path == root or path:sub(1, #root + 1) == root .. "/" then return true end
  end
  return false
end

local function refused(name)
  return tostring(name) .. ": attnslides lets LaTeX reach no file outside the project and TeX's own"
end

local open, lines, input, output = io.open, io.lines, io.input, io.output
io.open = function(name, mode)
  local writing = mode ~= nil and string.find(mode, "[wa+]") ~= nil
  if not allowed(name, writing and write_roots or read_roots) then return nil, refused(name) end
  return open(name, mode)
end
io.lines = function(name, ...)
  if name ~= nil and not allowed(name, read_roots) then error(refused(name)) end
  return lines(name, ...)
end
io.input = function(file)
  if type(file) == "string" and not allowed(file, read_roots) then error(refused(file)) end
  return input(file)
end
io.output = function(file)
  if type(file) == "string" and not allowed(file, write_roots) then error(refused(file)) end
  return output(file)
end

local loadfile_, dofile_ = loadfile, dofile
loadfile = function(name, ...)
  if name == nil or not allowed(name, read_roots) then return nil, refused(name) end
  return loadfile_(name, ...)
end
dofile = function(name)
  if name == nil or not allowed(name, read_roots) then error(refused(name)) end
  return dofile_(name)
end

local remove, rename = os.remove, os.rename
os.remove = function(name)
  if not allowed(name, write_roots) then return nil, refused(name) end
  return remove(name)
end
os.rename = function(from, to)
  if not (allowed(from, write_roots) and allowed(to, write_roots)) then return nil, refused(from) end
  return rename(from, to)
end
for _, name in ipairs({"mkdir", "rmdir", "touch", "link", "chdir"}) do
  local original = lfs[name]
  if original then
    lfs[name] = function(path, ...)
      if not allowed(path, write_roots) then return nil, refused(path) end
      return original(path, ...)
    end
  end
end

-- the originals above stay out of reach: no debug access to upvalues or the registry
if type(debug) == "table" then
  for _, name in ipairs({"getupvalue", "setupvalue", "upvaluejoin", "upvalueid", "getlocal", "setlocal",
                         "getregistry", "sethook", "getinfo"}) do
    debug[name] = nil
  end
end

-- A PDF's /ID is, by default, a hash of its path and date: the same deck built in two folders
-- would differ. Derive it from the job's name instead (the date is SOURCE_DATE_EPOCH already).
local id = md5.sumhexa(tex.jobname)
pdf.settrailerid("[<" .. id .. "> <" .. id .. ">]")
