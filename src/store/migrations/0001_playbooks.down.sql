DROP TABLE bullets;
DROP TABLE sections;
DROP TABLE playbooks;
