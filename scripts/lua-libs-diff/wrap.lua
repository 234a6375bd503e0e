local function hx(s) return (string.gsub(s, ".", function(c) return string.format("%02x", string.byte(c)) end)) end
local function show(v) if type(v) == 'table' then local t = {} for i = 1, #v do t[i] = show(v[i]) end return '{' .. table.concat(t, ',') .. '}' elseif type(v) == 'string' then return v else return tostring(v) end end
local ok, r = pcall(function() CODE
end)
if not ok then return 'ERR ' .. tostring(r) end
return show(r)
