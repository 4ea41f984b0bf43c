-- Daily match usage per principal (the profile's dailyQuota), summed across gateway processes.
CREATE TABLE principal_usage (
  principal_id  text NOT NULL,
  day           date NOT NULL,               -- Asia/Shanghai calendar day
  used          bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (principal_id, day)
);
