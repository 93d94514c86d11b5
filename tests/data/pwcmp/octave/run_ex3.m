% Scores of pwcmp example 3 with pw_scale.m (copy it here), pooled and per scene.
fid = fopen('../ex3_tmo_cmp_data.csv'); fgetl(fid);
C = textscan(fid, '%s %f %s %s %s %f %s', 'Delimiter', ',');
fclose(fid);
sc = C{3}; ca = C{4}; cb = C{5}; sel = C{6};
conds = unique([ca; cb]);
scenes = [{'all'}; unique(sc)];
out = fopen('../pw_scale_ex3.csv', 'w');
fprintf(out, 'group,condition,jod\n');
for g = 1:numel(scenes)
  if g == 1, m = true(size(sel)); else m = strcmp(sc, scenes{g}); end
  D = zeros(numel(conds));
  idx = find(m);
  for t = idx'
    i = find(strcmp(conds, ca{t})); j = find(strcmp(conds, cb{t}));
    if sel(t) == 1, D(i,j) = D(i,j) + 1; else D(j,i) = D(j,i) + 1; end
  end
  Q = pw_scale(D);
  for k = 1:numel(conds)
    fprintf(out, '%s,%s,%.6f\n', scenes{g}, conds{k}, Q(k));
  end
end
fclose(out);
